// `jepa`: the jepa-lab host's front end. The results commands (runs, show, compare, plot, ui) run
// here without LibTorch so that they answer at once; every other command replaces this process
// with `jepa-engine` (same folder), the full program, keeping the arguments and environment.
#include "cli/app.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

namespace {

std::string engine_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string self = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  const auto slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/jepa-engine";
}

}  // namespace

int main(int argc, char** argv) {
  if (jepa::cli::is_light_command(argc, argv)) return jepa::cli::run_cli(argc, argv, /*full=*/false);
  const std::string engine = engine_path();
  ::execv(engine.c_str(), argv);
  fmt::print(stderr, "error: cannot start {}: {} (build it with scripts/build.sh; it belongs next to jepa)\n", engine,
             std::strerror(errno));
  return 1;
}
