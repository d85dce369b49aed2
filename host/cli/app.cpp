#include "cli/app.hpp"

#include "cli/commands.hpp"

#include <jepa/sdk/abi.h>
#include <jepa/sdk/params.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#ifdef JEPA_CLI_FULL
#include "config/params.hpp"
#include "loader/masking_strategy.hpp"
#endif

namespace jepa::cli {

bool is_light_command(int argc, char** argv) {
  // The first word that is neither an option nor an option's value names the command.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--plugin-path") {
      ++i;
      continue;
    }
    if (a.rfind("-", 0) == 0) return false;  // --help, --version, ...: the full program answers
    return a == "runs" || a == "show" || a == "compare" || a == "plot" || a == "ui";
  }
  return false;
}

int run_cli(int argc, char** argv, bool full) {
  CLI::App app{
      "jepa-lab: train, sweep and compare I-JEPA (Image Joint-Embedding Predictive Architecture)\n"
      "with masking strategies, encoders, predictors, objectives and evaluators loaded as plugins."};
  app.name("jepa");
  app.fallthrough();  // global options may follow the subcommand
  app.require_subcommand(1);
  app.set_version_flag("--version", "jepa 0.1.0 (plugin SDK ABI " + std::to_string(JEPA_ABI_MAJOR) + "." +
                                        std::to_string(JEPA_ABI_MINOR) + ")");
  GlobalOptions global;
  global.argv.assign(argv, argv + argc);
  app.add_option("--plugin-path", global.plugin_paths,
                 "Extra folder to load plugins from (repeatable); $JEPA_PLUGIN_PATH (colon-separated) "
                 "and the build's plugins/ folder are always searched")
      ->type_name("DIR");
  app.footer(
      "Examples:\n"
      "  jepa run experiments/quickstart.toml  train I-JEPA on Fashion-MNIST, probe it, record it in results/jepa.db\n"
      "  jepa sweep experiments/sweep_quickstart.toml\n"
      "                                        a hyper-parameter sweep, one process per trial, resumable\n"
      "  jepa runs                             list recorded runs with their parameters and metrics\n"
      "  jepa compare --sweep S                compare a sweep's variants, seeds grouped, with 95% CIs\n"
      "  jepa plot 1 2 --metric train/loss     overlay training curves (PNG/SVG)\n"
      "  jepa ui                               the results database in a web browser (127.0.0.1:8765)\n"
      "  jepa plugins                          list plugins, components and their parameters\n"
      "  jepa masks --strategy multiblock -o masks.png\n"
      "                                        draw I-JEPA multi-block masks for a 14x14 grid\n"
      "  jepa <command> --help                 options of one command");

  std::vector<Command> commands;
#ifdef JEPA_CLI_FULL
  if (full) {
    commands = {add_run_command(app, global),   add_eval_command(app, global),    add_export_command(app, global),
                add_sweep_command(app, global), add_plugins_command(app, global), add_masks_command(app, global)};
  }
#else
  (void)full;
#endif
  for (auto c : {add_runs_command(app), add_show_command(app), add_compare_command(app), add_plot_command(app)}) {
    commands.push_back(c);
  }
#ifdef JEPA_WITH_UI
  commands.push_back(add_ui_command(app, global));
#endif

  if (argc == 1) {
    std::fputs(app.help().c_str(), stdout);
    return 2;
  }
  if (full) {
    // CLI11 would answer `jepa nosuchcmd --help` with the main help and status 0: a typo in a
    // script must not look like success.
    for (int i = 1; i < argc; ++i) {
      const std::string word = argv[i];
      if (word == "--plugin-path") {
        ++i;
        continue;
      }
      if (word.rfind("-", 0) == 0) continue;
      std::vector<std::string> names;
      bool known = false;
      for (const auto* sub : app.get_subcommands({})) {
        names.push_back(sub->get_name());
        known = known || sub->check_name(word);
      }
      if (!known) {
        fmt::print(stderr, "error: unknown command '{}'; the commands are {} (jepa --help describes them)\n", word,
                   fmt::join(names, ", "));
        return 2;
      }
      break;
    }
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
#ifdef JEPA_CLI_FULL
  } catch (const jepa::config::ConfigError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const jepa::loader::ParameterRejected& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
#endif
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", jepa::sdk::without_backtrace(e.what()));
    return 1;
  }
}

}  // namespace jepa::cli
