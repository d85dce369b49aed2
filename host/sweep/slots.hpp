// Device slots of a local sweep: which GPUs (or CPU threads) each concurrent trial gets.
#pragma once

#include "sweep/spec.hpp"

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

}  // namespace jepa::sweep
