// `jepa sweep`: run a hyper-parameter sweep (an experiment plus [sweep]) across the machine's
// GPUs or CPU slots, each trial in its own process; `--resume` finishes an interrupted sweep.
#include "cli/commands.hpp"
#include "loader/registry.hpp"
#include "store/store.hpp"
#include "sweep/scheduler.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <memory>

namespace jepa::cli {
namespace {

// The shell's status for "stopped by Ctrl-C": the sweep is recorded and can be resumed.
constexpr int kInterrupted = 130;

struct SweepOptions {
  std::string file;
  std::string db = "results/jepa.db";
  bool dry_run = false;
  std::string resume;
};

std::filesystem::path self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot find the running executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

int run_sweep(const GlobalOptions& global, const SweepOptions& o) {
  try {
    sweep::SweepRunOptions ro;
    ro.engine = self_executable();
    ro.db = o.db;
    ro.plugin_paths = global.plugin_paths;
    if (!o.resume.empty()) {
      if (!o.file.empty()) throw UsageError("--resume finishes a recorded sweep: give no FILE");
      if (!std::filesystem::exists(o.db)) {
        throw UsageError(fmt::format("no results database at {} (pass the sweep's --db)", o.db));
      }
      store::Store store(o.db);
      return sweep::resume_sweep(o.resume, store, ro) ? 0 : kInterrupted;
    }
    if (o.file.empty()) throw UsageError("jepa sweep needs a sweep FILE (or --resume SWEEP)");
    const loader::Registry reg = discover_plugins(global);
    if (o.dry_run) {
      sweep::describe_sweep(o.file, reg);
      fmt::print("dry run ok: every trial is valid\n");
      return 0;
    }
    return sweep::start_sweep(o.file, reg, ro) ? 0 : kInterrupted;
  } catch (const sweep::SweepError& e) {
    throw UsageError(e.what());
  }
}

}  // namespace

Command add_sweep_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<SweepOptions>();
  auto* sub = parent.add_subcommand(
      "sweep", "Run a hyper-parameter sweep: every trial in its own process, on GPUs or CPU slots, resumable");
  sub->add_option("file", o->file, "Sweep file: an experiment with a [sweep] table")->type_name("FILE");
  sub->add_option("--db", o->db, "Results database")->capture_default_str();
  sub->add_flag("--dry-run", o->dry_run, "Expand and validate the trials and print them; run nothing");
  sub->add_option("--resume", o->resume, "Finish a recorded sweep (name or id) after an interruption or a crash")
      ->type_name("SWEEP");
  sub->footer(
      "Examples:\n"
      "  jepa sweep experiments/sweep_quickstart.toml --dry-run\n"
      "  jepa sweep experiments/sweep_quickstart.toml\n"
      "  jepa sweep --resume sweep_quickstart      # after Ctrl-C, a crash or kill -9 of the sweep host\n"
      "  jepa compare --sweep sweep_quickstart\n"
      "Trials that crash are recorded FAILED with their exit status or signal and the tail of their log\n"
      "(results/sweeps/<id>/logs/); finished trials are never run again; interrupted ones continue\n"
      "from their last checkpoint. The [sweep] table is documented in host/sweep/spec.hpp.");
  return {sub, [&global, o] { return run_sweep(global, *o); }};
}

}  // namespace jepa::cli
