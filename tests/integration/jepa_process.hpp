// Runs the built `jepa` executable as a user would, capturing exit status, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>
#include <atomic>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace jepa_test {

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh folder under the system temp dir, removed by the caller when it wants.
inline std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// `args` is appended to the command line verbatim (quote paths yourself).
inline Result run_jepa(const std::string& args, const std::string& env = "") {
  const auto dir = std::filesystem::temp_directory_path() / ("jepa_process_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // A file pair per call: tests run several commands at once from threads.
  static std::atomic<int> calls{0};
  const int call = calls++;
  const auto out = dir / ("out" + std::to_string(call));
  const auto err = dir / ("err" + std::to_string(call));
  const std::string cmd = "env -u JEPA_PLUGIN_PATH " + env + " '" + std::string(JEPA_BINARY) + "' " + args + " > '" +
                          out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// The address a server (`jepa ui`) printed to `out`: the first "http://..." word of a finished
// line, waiting up to 20 s; "" when none came.
inline std::string printed_url(const std::filesystem::path& out) {
  for (int i = 0; i < 200; ++i) {
    const std::string text = slurp(out);
    const auto at = text.find("http://");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      return text.substr(at, text.find_first_of(" \n", at) - at);
    }
    ::usleep(100 * 1000);
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace jepa_test
