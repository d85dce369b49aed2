#include "train/environment.hpp"

#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

namespace jepa::train {

namespace {

// Output of a shell command with its trailing newline trimmed; "" when it fails.
std::string capture(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(cmd.c_str(), "r"), &::pclose);
  if (!pipe) return "";
  std::string out;
  std::array<char, 256> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe.get()) != nullptr) out += buf.data();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

}  // namespace

std::map<std::string, std::string> collect_environment(const std::filesystem::path& source_dir,
                                                       const std::string& device) {
  std::map<std::string, std::string> env;
  const std::string dir = source_dir.empty() ? "." : source_dir.string();
  const std::string git = "git -C '" + dir + "' ";
  const std::string sha = capture(git + "rev-parse HEAD 2>/dev/null");
  env["git_sha"] = sha.empty() ? "unknown" : sha;
  env["git_dirty"] = sha.empty() ? "unknown" : (capture(git + "status --porcelain 2>/dev/null").empty() ? "0" : "1");
  std::array<char, 256> host{};
  ::gethostname(host.data(), host.size() - 1);
  env["host"] = host.data();
  env["cpu"] = cpu_model();
  env["cpu_cores"] = std::to_string(std::thread::hardware_concurrency());
  env["device"] = device;
  env["cuda_available"] = torch::cuda::is_available() ? "1" : "0";
  env["cuda_devices"] = std::to_string(torch::cuda::device_count());
  env["torch_version"] = TORCH_VERSION;
  env["threads"] = std::to_string(torch::get_num_threads());
  return env;
}

}  // namespace jepa::train
