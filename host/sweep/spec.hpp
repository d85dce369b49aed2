// Sweep specs: an experiment TOML plus a [sweep] table that names the parameters to vary, how to
// pick their values (grid, random or TPE), the seeds that replicate each point, where trials run and
// how hopeless trials are pruned. Expanding a spec gives the trials, each a list of `--set`
// overrides of the base experiment, so every trial is checked by the experiment loader itself.
//
//   [sweep]
//   name = "lr-grid"            # default: the file's stem
//   method = "grid"             # grid (every combination) | random (`trials` draws) | tpe (TPE,
//                               # each point proposed from the finished trials when a slot frees)
//   trials = 0                  # random, tpe: how many points (required, >= 1); grid: unused
//   sample_seed = 0             # random, tpe: seed of the draws, so the proposals are reproducible
//   seeds = [0]                 # each point runs once per seed (sets run.seed); with tpe every
//                               # (point, seed) trial is one observation
//   objective = { metric = "linear_probe/top1", mode = "max", value = "last" }
//                               # what tpe optimises (required for tpe) and the summaries rank by;
//                               # value: last (at the run's last step) | best (over the run)
//   tpe = { startup_trials = 10, candidates = 24, multivariate = true, constant_liar = true }
//   enqueue = [{ "optimization.lr" = 1e-3, "encoder.params.depth" = 4 }]
//                               # random, tpe: points run first (each a full point of the space);
//                               # they count toward `trials`
//   warm_start = ["lr-earlier"] # tpe: earlier sweeps in the same database over the same
//                               # parameters; their finished trials seed the history
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
//   "optimization.ema" = { uniform = [0.99, 0.999], step = 0.001 }   # values low + k*step
//   "data.batch_size" = { int = [16, 512], log = true }       # log-uniform integers (low >= 1)
//   "encoder.params.depth" = { int = [2, 12], step = 2 }      # 2, 4, ..., 12
//   "objective.plugin" = ["ijepa", "sigreg"]
//   "objective.params.lambda" = { log_uniform = [0.01, 1], when = { "objective.plugin" = "sigreg" } }
//                               # conditional: exists only when an earlier choice parameter has
//                               # one of the given values (a list for several); else it is not set
//   "masking.params.pred_scale" = [[0.15, 0.2], [0.1, 0.15]]  # values of a list-valued key
//   # Unquoted dotted keys (optimization.lr = [...]) and [sweep.params.<section>] tables name the
//   # same keys. A value may not repeat in a list (1 and 1.0 are one value); run.seed is not a
//   # parameter (use seeds). No parameters at all is a seeds-only grid; random needs one or more.
//
//   # Ranges and steps: high - low must be a multiple of step; log needs an int range with low >= 1
//   # and no step (a float on a log scale is log_uniform). Grid, random and tpe all take
//   # conditions; a grid sets a conditional parameter only in the combinations where it exists.
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

#include "pruning/rules.hpp"
#include "sweep/space.hpp"

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

// The pruning rule (pruning/rules.hpp), read from [sweep.pruning].
using PruningSpec = pruning::PruningSpec;

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

// What a sequential method optimises, and what the live summary and `jepa compare --importance`
// rank by: a metric the trials log, its direction, and which of its values counts.
struct ObjectiveSpec {
  std::string metric;  // "" = not given: the pruning metric stands in where one is needed
  bool maximize = false;
  std::string value = "last";  // last (the value at the last step) | best (over the run)
};

struct TpeSpec {
  int64_t startup_trials = 10;
  int64_t candidates = 24;
  bool multivariate = true;
  bool constant_liar = true;
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
  std::vector<Param> params;  // in file order (a condition's parent before the parameters it decides)
  PruningSpec pruning;
  ObjectiveSpec objective;
  TpeSpec tpe;
  std::vector<Point> enqueue;           // points run first (random, tpe), in order
  std::vector<std::string> warm_start;  // earlier sweeps in the same database (tpe)
  std::string launcher = "local";       // local | slurm
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

// The objective a sampler and the summaries rank by: [sweep] objective, else the pruning metric.
ObjectiveSpec effective_objective(const SweepSpec& spec);

// Grid: every combination of the lists (file order, last key varying fastest) times the seeds
// (seed fastest), a conditional parameter set only where it exists (repeats dropped). Random: the
// enqueued points, then draws with sample_seed up to `trials` points, times the seeds. Throws
// SweepError for a grid with a non-list distribution, and for method "tpe", whose points are
// proposed one at a time as the sweep runs (sweep/proposer.hpp).
std::vector<Trial> expand_trials(const SweepSpec& spec);

// One point's trials, one per seed (seed fastest), numbered from `first_index`.
std::vector<Trial> trials_of_point(const SweepSpec& spec, const Point& point, int64_t first_index);

}  // namespace jepa::sweep
