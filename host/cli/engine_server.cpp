// `jepa-engine --serve`: the engine kept warm for `jepa ui`, which would otherwise start a
// process (and LibTorch, most of a second) for every masks picture. One request per line on
// stdin, one reply per line on the stdout it was started with:
//   {"argv": ["masks", "--strategy", "multiblock", ...], "out": FILE, "err": FILE}  ->  {"code": N}
// Each request runs as `jepa-engine ARGV...` would (same parser, same messages, same exit
// status), with its stdout and stderr written to the two files the request names. Only the
// read-only commands the ui needs are served.
#include "cli/engine_server.hpp"
#include "cli/app.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace jepa::cli {

namespace {

using nlohmann::json;

// The command word of an argv without the program name: the first word that is neither an
// option nor --plugin-path's value.
std::string command_of(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--plugin-path") {
      ++i;
      continue;
    }
    return args[i];
  }
  return "";
}

bool write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void flush_streams() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(stdout);
  std::fflush(stderr);
}

// Points stdout and stderr at two files for the lifetime of the object, then back.
class Redirect {
 public:
  Redirect(int out, int err) {
    flush_streams();
    saved_out_ = ::dup(STDOUT_FILENO);
    saved_err_ = ::dup(STDERR_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
  }
  ~Redirect() {
    flush_streams();
    ::dup2(saved_out_, STDOUT_FILENO);
    ::dup2(saved_err_, STDERR_FILENO);
    ::close(saved_out_);
    ::close(saved_err_);
  }
  Redirect(const Redirect&) = delete;
  Redirect& operator=(const Redirect&) = delete;

 private:
  int saved_out_ = -1;
  int saved_err_ = -1;
};

class File {
 public:
  explicit File(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) {}
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

int serve_one(const json& request) {
  const auto& argv_json = request.at("argv");
  std::vector<std::string> args;
  for (const auto& a : argv_json) args.push_back(a.get<std::string>());
  const File out(request.at("out").get<std::string>());
  const File err(request.at("err").get<std::string>());
  if (out.fd() < 0 || err.fd() < 0) return 1;
  const std::string command = command_of(args);
  if (command != "masks" && command != "plugins") {
    write_all(err.fd(), "error: jepa-engine --serve runs only `masks` and `plugins`, not '" + command + "'\n");
    return 2;
  }
  std::vector<std::string> full{"jepa-engine"};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  const Redirect redirect(out.fd(), err.fd());
  return run_cli(static_cast<int>(full.size()), argv.data(), /*full=*/true);
}

}  // namespace

int serve_engine_requests() {
  // The replies keep the stdout this process started with; between requests stdout is
  // /dev/null, so that nothing else can interleave with them.
  const int reply = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (reply < 0) {
    std::fprintf(stderr, "error: jepa-engine --serve: cannot keep its stdout: %s\n", std::strerror(errno));
    return 1;
  }
  const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDOUT_FILENO);
    ::close(null);
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    int code = 2;
    try {
      const json request = json::parse(line);
      code = serve_one(request);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: jepa-engine --serve: bad request: %s\n", e.what());
      code = 2;
    }
    if (!write_all(reply, json{{"code", code}}.dump() + "\n")) break;
  }
  ::close(reply);
  return 0;
}

}  // namespace jepa::cli
