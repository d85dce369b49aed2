// Running a sweep: every trial in its own child process (`jepa-engine run`), one per device slot,
// so that a crash, abort or out-of-memory kill loses only that trial. The trial list is fixed in
// the store when the sweep is created; resuming reads it back, never runs a finished trial
// again, and continues interrupted trials from their checkpoints.
#pragma once

#include "loader/registry.hpp"
#include "store/store.hpp"
#include "sweep/spec.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace jepa::sweep {

struct Slot {
  std::string cuda_visible_devices;  // "" = CPU
  int threads = 1;
  std::string label;  // "gpu 0", "cpu 1"
  int ranks = 1;      // gpus_per_trial > 1: one data-parallel rank per GPU (jepa run --nproc)
};

// devices "cpu": cores / threads_per_trial slots; "auto": the visible GPUs (else CPU);
// "0,2": those GPUs. GPU slots take gpus_per_trial GPUs each, trials_per_gpu trials per GPU.
// GPUs are numbered as this process sees them (0 .. visible_gpus-1); a trial's
// CUDA_VISIBLE_DEVICES names them as the sweep host's own CUDA_VISIBLE_DEVICES does
// (`host_visible_devices`, nullptr when unset): under "4,5,6,7" (a shared machine, or a SLURM
// allocation that exports global ids) GPU 0 is "4", and UUID or MIG entries pass on unchanged.
std::vector<Slot> plan_slots(const SweepSpec& spec, int visible_gpus, int cores,
                             const char* host_visible_devices = nullptr);

// The entries of a CUDA_VISIBLE_DEVICES value that name the `visible_gpus` devices CUDA shows,
// in order ("4, 5" -> {"4", "5"}); {"0", ..., "visible_gpus-1"} when `value` is nullptr.
// SweepError when the value names fewer devices than CUDA shows.
std::vector<std::string> visible_device_ids(const char* value, int visible_gpus);

struct SweepRunOptions {
  std::filesystem::path engine;  // the jepa-engine executable that runs trials
  std::filesystem::path db;
  bool progress = true;                   // a live summary line when stderr is a terminal
  std::vector<std::string> plugin_paths;  // --plugin-path folders, passed on to every trial
};

// Validates every trial against the plugins (ConfigError naming the trial), records the sweep
// and its trials, and runs them. Returns false when it was interrupted (resume it later).
bool start_sweep(const std::filesystem::path& file, const loader::Registry& registry, const SweepRunOptions& options);

// Finishes a recorded sweep (by name or id); false when interrupted again.
bool resume_sweep(const std::string& sweep, store::Store& store, const SweepRunOptions& options);

// `jepa sweep --dry-run`: the trials, validated, and the slots; records nothing.
void describe_sweep(const std::filesystem::path& file, const loader::Registry& registry);

}  // namespace jepa::sweep
