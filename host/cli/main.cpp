// `jepa`: the jepa-lab host. Parses the command line, runs one subcommand, and maps failures to
// exit statuses: 0 ok, 1 runtime failure, 2 usage or configuration error.
#include "cli/commands.hpp"
#include "config/params.hpp"
#include "loader/registry.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <exception>

namespace jepa::cli {

loader::Registry discover_plugins(const GlobalOptions& global) {
  std::vector<std::filesystem::path> extra(global.plugin_paths.begin(), global.plugin_paths.end());
  return loader::Registry::discover(loader::plugin_search_path(extra));
}

}  // namespace jepa::cli

int main(int argc, char** argv) {
  using namespace jepa::cli;
  CLI::App app{
      "jepa-lab: train, sweep and compare I-JEPA (Image Joint-Embedding Predictive Architecture)\n"
      "with masking strategies, encoders, predictors and evaluators loaded as plugins."};
  app.name("jepa");
  app.fallthrough();  // global options may follow the subcommand
  app.require_subcommand(1);
  app.set_version_flag("--version", "jepa 0.1.0 (plugin SDK ABI " + std::to_string(JEPA_ABI_MAJOR) + "." +
                                        std::to_string(JEPA_ABI_MINOR) + ")");
  GlobalOptions global;
  app.add_option("--plugin-path", global.plugin_paths,
                 "Extra folder to load plugins from (repeatable); $JEPA_PLUGIN_PATH (colon-separated) "
                 "and the build's plugins/ folder are always searched")
      ->type_name("DIR");
  app.footer(
      "Examples:\n"
      "  jepa run experiments/quickstart.toml  train I-JEPA on Fashion-MNIST, probe it, record it in results/jepa.db\n"
      "  jepa runs                             list recorded runs with their parameters and metrics\n"
      "  jepa compare --sweep S                compare a sweep's variants, seeds grouped, with 95% CIs\n"
      "  jepa plot 1 2 --metric train/loss     overlay training curves (PNG/SVG)\n"
      "  jepa plugins                          list plugins, components and their parameters\n"
      "  jepa masks --strategy multiblock -o masks.png\n"
      "                                        draw I-JEPA multi-block masks for a 14x14 grid\n"
      "  jepa <command> --help                 options of one command");

  std::vector<Command> commands{add_run_command(app, global),
                                add_eval_command(app, global),
                                add_export_command(app, global),
                                add_plugins_command(app, global),
                                add_masks_command(app, global),
                                add_runs_command(app),
                                add_show_command(app),
                                add_compare_command(app),
                                add_plot_command(app)};

  if (argc == 1) {
    std::fputs(app.help().c_str(), stdout);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    for (auto& cmd : commands) {
      if (cmd.app->parsed()) return cmd.run();
    }
    return 2;
  } catch (const UsageError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const jepa::config::ConfigError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
