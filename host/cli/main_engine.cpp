// `jepa-engine`: the full `jepa` program (every command, with LibTorch). The `jepa` front end
// hands it every command it does not answer itself; running it directly works the same.
#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/engine_server.hpp"
#include "loader/registry.hpp"
#include "process/allocator.hpp"

#include <string>

namespace jepa::cli {

loader::Registry discover_plugins(const GlobalOptions& global) {
  std::vector<std::filesystem::path> extra(global.plugin_paths.begin(), global.plugin_paths.end());
  return loader::Registry::discover(loader::plugin_search_path(extra));
}

}  // namespace jepa::cli

int main(int argc, char** argv) {
  jepa::process::tune_allocator();
  // `jepa ui` keeps one engine warm for its masks page (not a user command, so not in --help).
  if (argc == 2 && std::string(argv[1]) == "--serve") return jepa::cli::serve_engine_requests();
  return jepa::cli::run_cli(argc, argv, /*full=*/true);
}
