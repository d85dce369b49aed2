#include "ui/engine.hpp"

#include "process/spawn.hpp"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace jepa::ui {

namespace fs = std::filesystem;

namespace {

// A private folder for one child's output, removed with the object.
class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = (fs::temp_directory_path() / "jepa-ui-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      throw std::runtime_error(fmt::format("cannot create a temporary folder: {}", std::strerror(errno)));
    }
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

fs::path default_engine_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  const fs::path self = n > 0 ? fs::path(std::string(buf, static_cast<size_t>(n))) : fs::path("jepa");
  return self.parent_path() / "jepa-engine";
}

Engine::Engine(fs::path executable, std::vector<std::string> plugin_paths)
    : executable_(std::move(executable)), plugin_paths_(std::move(plugin_paths)) {}

EngineResult Engine::run(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                         const std::string& output_file) const {
  ScratchDir dir;
  process::ChildSpec spec;
  spec.argv = {executable_.string()};
  for (const auto& p : plugin_paths_) spec.argv.insert(spec.argv.end(), {"--plugin-path", p});
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  if (!output_file.empty()) spec.argv.insert(spec.argv.end(), {"-o", (dir.path() / output_file).string()});
  spec.output = dir.path() / "out";
  spec.error_output = dir.path() / "err";
  const pid_t pid = process::spawn_child(spec);
  EngineResult r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.code = !r.timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir.path() / "out");
  r.err = slurp(dir.path() / "err");
  if (!output_file.empty()) r.file = slurp(dir.path() / output_file);
  return r;
}

}  // namespace jepa::ui
