// Running a sweep: every trial in its own child process (`jepa-engine run`) on a device slot
// (sweep/local_runner.hpp) or SLURM job (sweep/slurm_runner.hpp), so that a crash, abort or
// out-of-memory kill loses only that trial. Trials are stored before they run (a grid's or
// random search's all at creation, a TPE sweep's as each point is proposed: sweep/proposer.hpp);
// resuming reads them back, never runs a finished trial again, and continues interrupted trials
// from their checkpoints.
#pragma once

#include "loader/registry.hpp"
#include "store/store.hpp"
#include "sweep/slots.hpp"
#include "sweep/spec.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace jepa::sweep {

struct SweepRunOptions {
  std::filesystem::path engine;  // the jepa-engine executable that runs trials
  std::filesystem::path db;
  bool progress = true;                   // a live summary line when stderr is a terminal
  std::vector<std::string> plugin_paths;  // --plugin-path folders, passed on to every trial
  bool create_only = false;               // record the sweep, run nothing (`jepa sweep --create`)
};

// Validates every trial against the plugins (ConfigError naming the trial; for TPE the enqueued
// points and every parameter's extremes), records the sweep and its trials, and runs them. Returns false when it was
// interrupted (resume it later).
bool start_sweep(const std::filesystem::path& file, const loader::Registry& registry, const SweepRunOptions& options);

// Finishes a recorded sweep (by name or id); false when interrupted again.
bool resume_sweep(const std::string& sweep, store::Store& store, const SweepRunOptions& options);

// `jepa sweep --dry-run`: the trials, validated, and the slots; records nothing.
void describe_sweep(const std::filesystem::path& file, const loader::Registry& registry);

}  // namespace jepa::sweep
