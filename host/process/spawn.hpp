// Child processes that must not outlive their parent: sweep trials and data-parallel ranks.
// No LibTorch here.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace jepa::process {

struct ChildSpec {
  std::vector<std::string> argv;                      // the executable first
  std::vector<std::string> unset;                     // names dropped from this process's environment
  std::vector<std::string> set;                       // "NAME=value" added to it
  std::optional<std::filesystem::path> output;        // stdout and stderr appended here; none: inherited
  std::optional<std::filesystem::path> error_output;  // stderr here instead, apart from stdout
  int input_fd = -1;  // >= 0: the child's stdin (e.g. a pipe's read end); none: inherited
  int reply_fd = -1;  // >= 0: the child's stdout before `output` applies (e.g. a pipe's write end)
};

// fork + execve. Everything is prepared before fork (only async-signal-safe calls run in the
// child); the child gets SIGTERM when this process dies (PR_SET_PDEATHSIG) and the default
// SIGINT/SIGTERM handling. Throws std::runtime_error when fork fails; an exec failure is the
// child's exit status 127.
pid_t spawn_child(const ChildSpec& spec);

}  // namespace jepa::process
