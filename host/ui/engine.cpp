#include "ui/engine.hpp"

#include "process/spawn.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace jepa::ui {

namespace fs = std::filesystem;

namespace {

// A private folder for one request's output, removed with the object.
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

// The warm `jepa-engine --serve` and the socket it reads requests from and answers on. A
// socket rather than pipes: sending to an engine that died fails with EPIPE (MSG_NOSIGNAL)
// instead of raising SIGPIPE in the server.
struct Engine::Worker {
  std::mutex mutex;
  pid_t pid = -1;
  int fd = -1;
  std::string pending;  // bytes read past the last reply

  ~Worker() { stop(); }

  void start(const fs::path& executable) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      throw std::runtime_error(fmt::format("socketpair: {}", std::strerror(errno)));
    }
    process::ChildSpec spec;
    spec.argv = {executable.string(), "--serve"};
    spec.input_fd = sv[1];
    spec.reply_fd = sv[1];
    try {
      pid = process::spawn_child(spec);
    } catch (...) {
      ::close(sv[0]);
      ::close(sv[1]);
      throw;
    }
    ::close(sv[1]);
    fd = sv[0];
    pending.clear();
  }

  // Kills the engine (it holds no state worth a goodbye) and returns how it ended.
  int stop() {
    int status = 0;
    if (fd >= 0) ::close(fd);
    fd = -1;
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    pid = -1;
    return status;
  }

  // Whether the engine has ended (then it is reaped and its socket closed).
  bool ended() {
    if (pid <= 0) return true;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      stop();
      return true;
    }
    return false;
  }

  bool send_line(const std::string& line) const {
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  enum class Read { line, closed, timed_out };
  Read read_line(std::chrono::steady_clock::time_point deadline, std::string& line) {
    for (;;) {
      const auto nl = pending.find('\n');
      if (nl != std::string::npos) {
        line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        return Read::line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return Read::timed_out;
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
      if (r == 0) return Read::timed_out;
      char buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Read::closed;
      pending.append(buf, static_cast<size_t>(n));
    }
  }
};

fs::path default_engine_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  const fs::path self = n > 0 ? fs::path(std::string(buf, static_cast<size_t>(n))) : fs::path("jepa");
  return self.parent_path() / "jepa-engine";
}

Engine::Engine(fs::path executable, std::vector<std::string> plugin_paths)
    : executable_(std::move(executable)), plugin_paths_(std::move(plugin_paths)), worker_(std::make_unique<Worker>()) {
  worker_->start(executable_);
}

Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

pid_t Engine::worker_pid() const {
  std::lock_guard<std::mutex> lock(worker_->mutex);
  return worker_->ended() ? -1 : worker_->pid;
}

EngineResult Engine::run(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                         const std::string& output_file) const {
  ScratchDir dir;
  std::vector<std::string> argv;
  for (const auto& p : plugin_paths_) argv.insert(argv.end(), {"--plugin-path", p});
  argv.insert(argv.end(), args.begin(), args.end());
  if (!output_file.empty()) argv.insert(argv.end(), {"-o", (dir.path() / output_file).string()});
  const std::string request =
      nlohmann::json{{"argv", argv}, {"out", (dir.path() / "out").string()}, {"err", (dir.path() / "err").string()}}
          .dump() +
      "\n";

  EngineResult r;
  Worker& w = *worker_;
  std::lock_guard<std::mutex> lock(w.mutex);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // An engine that ended since the last request (killed, crashed) is replaced once.
  if (w.ended()) w.start(executable_);
  if (!w.send_line(request)) {
    w.stop();
    w.start(executable_);
    if (!w.send_line(request)) {
      w.stop();
      r.err = fmt::format("error: {} --serve did not start", executable_.string());
      return r;
    }
  }
  std::string reply;
  switch (w.read_line(deadline, reply)) {
    case Worker::Read::line: {
      const auto j = nlohmann::json::parse(reply, nullptr, false);
      r.code = j.is_object() ? j.value("code", -1) : -1;
      break;
    }
    case Worker::Read::timed_out:
      w.stop();
      r.timed_out = true;
      break;
    case Worker::Read::closed: {
      // It died answering (a plugin crashed, or it could not start): say how.
      const int status = w.stop();
      if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
      break;
    }
  }
  r.out = slurp(dir.path() / "out");
  r.err = slurp(dir.path() / "err");
  if (r.code == 127 && r.err.empty()) r.err = fmt::format("error: cannot run {}", executable_.string());
  if (r.code == -1 && !r.timed_out && r.err.empty()) {
    r.err = fmt::format("error: {} stopped while answering", executable_.string());
  }
  if (!output_file.empty()) r.file = slurp(dir.path() / output_file);
  return r;
}

}  // namespace jepa::ui
