// `jepa masks` and `jepa plugins` need LibTorch and the plugins, which the `jepa` front end (and
// so `jepa ui`) never loads: the masks page asks `jepa-engine` in a child process, so what it
// shows is exactly what `jepa masks` draws.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace jepa::ui {

struct EngineResult {
  int code = -1;  // the exit status; -1 when killed (signal or timeout)
  bool timed_out = false;
  std::string out;
  std::string err;
  std::string file;  // the output file's bytes, with `output_file`
};

class Engine {
 public:
  // `plugin_paths` are passed on as --plugin-path.
  Engine(std::filesystem::path executable, std::vector<std::string> plugin_paths);
  // Runs `jepa-engine [--plugin-path P]... ARGS...` (no shell: every argument is one argv entry)
  // and waits up to `timeout`, then kills it. With `output_file`, `-o <private folder>/output_file`
  // is appended and the file it writes comes back in EngineResult::file.
  EngineResult run(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                   const std::string& output_file = "") const;
  const std::filesystem::path& executable() const { return executable_; }

 private:
  std::filesystem::path executable_;
  std::vector<std::string> plugin_paths_;
};

// jepa-engine next to the running executable.
std::filesystem::path default_engine_path();

}  // namespace jepa::ui
