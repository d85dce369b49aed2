// Subcommands of `jepa`. Each registers its options on the parent CLI11 app and returns the
// action to run when it was chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::loader {
class Registry;
}

namespace jepa::cli {

// A usage error found after parsing (unknown plugin id, bad grid, ...): exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct GlobalOptions {
  std::vector<std::string> plugin_paths;
  std::vector<std::string> argv;  // the command line as given (jepa run --nproc repeats it for each rank)
};

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// The registry over the default folders, $JEPA_PLUGIN_PATH and --plugin-path.
loader::Registry discover_plugins(const GlobalOptions& global);

Command add_plugins_command(CLI::App& parent, const GlobalOptions& global);
Command add_masks_command(CLI::App& parent, const GlobalOptions& global);
Command add_run_command(CLI::App& parent, const GlobalOptions& global);
Command add_export_command(CLI::App& parent, const GlobalOptions& global);
Command add_eval_command(CLI::App& parent, const GlobalOptions& global);
Command add_sweep_command(CLI::App& parent, const GlobalOptions& global);
Command add_runs_command(CLI::App& parent);
Command add_show_command(CLI::App& parent);
Command add_compare_command(CLI::App& parent);
Command add_plot_command(CLI::App& parent);
Command add_ui_command(CLI::App& parent, const GlobalOptions& global);

// `jepa export --format csv|json`: runs (one row each, parameters and latest metrics) or, with
// `history`, every metric point; to `output` ("" or "-": standard output).
struct ExportTableOptions {
  std::vector<std::string> runs;
  std::optional<std::string> sweep;
  std::string where;
  std::string format;  // "csv" or "json"
  bool history = false;
  std::vector<std::string> metrics;  // history only; empty = all
  std::string output;
  std::string db;
};
int run_export_table(const ExportTableOptions& options);

}  // namespace jepa::cli
