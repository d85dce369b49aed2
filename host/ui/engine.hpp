// `jepa masks` and `jepa plugins` need LibTorch and the plugins, which the `jepa` front end (and
// so `jepa ui`) never loads: the masks page asks `jepa-engine` in a child process, so what it
// shows is exactly what `jepa masks` draws. That child is kept warm (`jepa-engine --serve`,
// started with the ui): a fresh one costs LibTorch's start-up, most of a second, per picture.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace jepa::ui {

struct EngineResult {
  int code = -1;  // the exit status; -1 when the engine died or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
  std::string file;  // the output file's bytes, with `output_file`
};

class Engine {
 public:
  // `plugin_paths` are passed on as --plugin-path. Starts the warm engine now, so that the first
  // request does not wait for LibTorch's start-up.
  Engine(std::filesystem::path executable, std::vector<std::string> plugin_paths);
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  // Runs `jepa-engine [--plugin-path P]... ARGS...` in the warm engine (every argument one argv
  // entry, no shell) and waits up to `timeout`; an engine that dies or overruns is killed and a
  // new one serves the next request. With `output_file`, `-o <private folder>/output_file` is
  // appended and the file it writes comes back in EngineResult::file. One request at a time.
  EngineResult run(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                   const std::string& output_file = "") const;
  const std::filesystem::path& executable() const { return executable_; }
  // The warm engine's process id (-1 when none is running), for tests.
  pid_t worker_pid() const;

 private:
  struct Worker;
  std::filesystem::path executable_;
  std::vector<std::string> plugin_paths_;
  std::unique_ptr<Worker> worker_;
};

// jepa-engine next to the running executable.
std::filesystem::path default_engine_path();

}  // namespace jepa::ui
