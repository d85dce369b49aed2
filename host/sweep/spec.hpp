// Sweep specs: an experiment TOML plus a [sweep] table that names the parameters to vary, how to
// pick their values (grid or random), the seeds that replicate each point, where trials run and
// how hopeless trials are pruned. Expanding a spec gives the trials, each a list of `--set`
// overrides of the base experiment, so every trial is checked by the experiment loader itself.
//
//   [sweep]
//   name = "lr-grid"            # default: the file's stem
//   method = "grid"             # grid (every combination) | random (`trials` draws)
//   trials = 0                  # random: how many points to draw (required, >= 1); grid: unused
//   sample_seed = 0             # random: seed of the draws, so the trial list is reproducible
//   seeds = [0]                 # each point runs once per seed (sets run.seed)
//   devices = "auto"            # auto (every visible GPU, else CPU slots) | cpu | "0,2" (GPU ids,
//                               # each once; kept without spaces)
//   gpus_per_trial = 1          # >= 1
//   trials_per_gpu = 1          # >= 1: small trials may share a GPU when asked
//   threads_per_trial = 1       # CPU threads per trial; CPU slots = cores / threads_per_trial
//   max_parallel = 0            # cap on trials at once; 0 = as many as there are slots (slurm:
//                               # jobs in the queue at once; 0 = every trial at once)
//   launcher = "local"          # local (this machine's slots) | slurm (each trial a SLURM job)
//
//   [sweep.slurm]               # launcher = "slurm" only; every key optional
//   partition = "gpu"           # sbatch --partition; default: the cluster's
//   time_limit = "2:00:00"      # sbatch --time: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; default: the partition's
//   nodes = 1                   # nodes per trial
//   tasks_per_node = 1          # data-parallel ranks per node (srun tasks); ranks = nodes * tasks_per_node
//   gpus_per_task = 0           # sbatch --gpus-per-task
//   cpus_per_task = 1           # sbatch --cpus-per-task, and each rank's threads
//   mem = "16G"                 # sbatch --mem (per node): a number with K, M, G or T
//   account = ""                # sbatch --account
//   qos = ""                    # sbatch --qos
//   signal_grace = 60           # seconds: SIGTERM this long before the time limit, to checkpoint
//   requeue = true              # sbatch --requeue: a preempted job continues from its checkpoint
//   sbatch_args = ["--constraint=a100"]   # more sbatch options, verbatim
//   shared_dir = ""             # a folder every node sees (trial journals, logs, checkpoints);
//                               # default: <database folder>/sweeps/<sweep id>
//   poll_seconds = 2.0          # how often the host asks SLURM and reads the journals
//
//   [sweep.params]              # any resolved config key, including plugin ids and parameters
//   "optimization.lr" = [5e-4, 1e-3, 2e-3]               # a list: grid values, or a random choice
//   "masking.strategy" = ["multiblock", "random"]
//   "optimization.weight_decay" = { uniform = [0.01, 0.1] }   # random only
//   "optimization.start_lr" = { log_uniform = [1e-5, 1e-3] }  # random only
//   "encoder.params.depth" = { int = [2, 6] }                 # inclusive; random only
//   "predictor.params.depth" = { choice = [2, 4, 6] }         # same as a list
//   "masking.params.pred_scale" = [[0.15, 0.2], [0.1, 0.15]]  # values of a list-valued key
//   # Unquoted dotted keys (optimization.lr = [...]) and [sweep.params.<section>] tables name the
//   # same keys. A value may not repeat in a list (1 and 1.0 are one value); run.seed is not a
//   # parameter (use seeds). No parameters at all is a seeds-only grid; random needs one or more.
//
//   [sweep.pruning]
//   rule = "none"               # none | median | asha
//   metric = "train/loss"       # a metric the trials log ("train/loss", "rankme/effective_rank", ...)
//   mode = "min"                # min | max: which direction is better
//   warmup_steps = 0            # median: never prune before this step
//   min_trials = 3              # median: prune only when at least this many other trials reported
//   grace_steps = 100           # asha: first rung (steps); rungs at grace * reduction^k
//   reduction = 3               # asha: keep the top 1/reduction at each rung (>= 2)
//
// Values become `--set` text: integers "4", floats the shortest text that reads back exactly
// ("0.0005", "1e-05"), strings verbatim, booleans true/false, lists "[0.15, 0.2]". Random draws
// use only std::mt19937_64's raw output, so a sample_seed gives the same trials on every platform.
// A spec may expand to at most 1,000,000 trials.
//
// Errors name the file, line and key like experiment errors: "sweep.toml:14:1: [sweep.params]
// optimization.lr: ...".
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::sweep {

struct SweepError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Distribution {
  enum class Kind { choice, uniform, log_uniform, int_range };
  Kind kind = Kind::choice;
  std::vector<std::string> choices;  // choice: values as `--set` text ("0.001", "multiblock", "[0.15, 0.2]")
  double low = 0.0;                  // uniform, log_uniform, int_range (inclusive)
  double high = 0.0;
};

struct PruningSpec {
  std::string rule = "none";  // none | median | asha
  std::string metric = "train/loss";
  bool maximize = false;  // mode = "max"
  int64_t warmup_steps = 0;
  int64_t min_trials = 3;
  int64_t grace_steps = 100;
  int64_t reduction = 3;
};

struct SlurmSpec {
  std::string partition;
  std::string time_limit;
  int64_t nodes = 1;
  int64_t tasks_per_node = 1;
  int64_t gpus_per_task = 0;
  int64_t cpus_per_task = 1;
  std::string mem;
  std::string account;
  std::string qos;
  int64_t signal_grace = 60;
  bool requeue = true;
  std::vector<std::string> sbatch_args;
  std::string shared_dir;
  double poll_seconds = 2.0;
  int64_t ranks() const { return nodes * tasks_per_node; }
};

struct SweepSpec {
  std::filesystem::path file;  // the experiment + [sweep] file
  std::string name;
  std::string method = "grid";
  int64_t trials = 0;
  uint64_t sample_seed = 0;
  std::vector<int64_t> seeds{0};
  std::string devices = "auto";
  int64_t gpus_per_trial = 1;
  int64_t trials_per_gpu = 1;
  int64_t threads_per_trial = 1;
  int64_t max_parallel = 0;
  std::vector<std::pair<std::string, Distribution>> params;  // in file order
  PruningSpec pruning;
  std::string launcher = "local";  // local | slurm
  SlurmSpec slurm;
};

struct Trial {
  int64_t index = 0;                         // 0-based, stable: the same spec gives the same list
  std::map<std::string, std::string> point;  // swept key -> value text (seed excluded)
  int64_t seed = 0;
  std::vector<std::string> overrides;  // "key=value" for `jepa run --set`, run.seed included
};

// Reads the [sweep] table of `file` (the rest of the file is the base experiment). Throws
// SweepError with file:line:column for bad keys, types, values and distributions; a file
// without [sweep] is an error that says so.
SweepSpec load_sweep_spec(const std::filesystem::path& file);

// Grid: every combination of the lists (file order, last key varying fastest) times the seeds
// (seed fastest). Random: `trials` points drawn with sample_seed, times the seeds. Throws
// SweepError for a grid with a non-list distribution.
std::vector<Trial> expand_trials(const SweepSpec& spec);

}  // namespace jepa::sweep
