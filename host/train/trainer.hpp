// One I-JEPA run, end to end: build the components from plugins, train with the official recipe,
// checkpoint, evaluate the frozen target encoder, and record everything in the results store.
#pragma once

#include "config/experiment.hpp"
#include "loader/registry.hpp"
#include "store/store.hpp"
#include "train/profiler.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace jepa::dist {
class Group;
}

namespace jepa::train {

struct TrainOptions {
  std::optional<int64_t> resume_run;  // continue this run from its latest checkpoint
  int64_t stop_after = 0;             // stop (with a checkpoint) after this many steps in this call
  bool progress = true;               // a live progress line when stderr is a terminal
  bool skip_evaluation = false;
  std::optional<store::TrialRef> trial;     // a new run that is this sweep trial's run
  bool restart_without_checkpoint = false;  // resume: start over when no checkpoint exists yet
  dist::Group* group = nullptr;             // one rank of a data-parallel job; none: one process
  std::string resume_hint;                  // how to continue a stopped run; "" = `jepa run --resume ID`
  std::optional<ProfileWindow> profile;     // `jepa run --profile`: a Chrome trace of these steps (rank 0)
};

struct TrainOutcome {
  int64_t run_id = 0;
  store::RunStatus status = store::RunStatus::running;
  std::string reason;
  int64_t steps = 0;
  double last_loss = 0.0;
};

// `jepa run --dry-run`: builds the models and a batch of masks, checks shapes, and prints what
// would run; records nothing and reads no data.
void describe_experiment(const config::Experiment& experiment);

// Errors in the experiment that show only once the components exist (image size versus the
// encoder's grid, ...) throw config::ConfigError before the run is recorded. Failures during
// training end the run as FAILED with the reason (non-finite loss: "diverged at step N").
// In a data-parallel job (options.group) rank 0 alone touches `store` (the others pass nullptr):
// it records the run, the metrics (the loss is the mean over ranks), checkpoints and
// evaluations; a rank that fails or a peer that dies or hangs past [distributed] timeout ends
// the run FAILED with the rank and the reason.
TrainOutcome run_experiment(const config::Experiment& experiment, store::Recorder* store, const TrainOptions& options);

// Loads a stored run's target encoder (and the rest) from its latest checkpoint and evaluates it
// with `evaluator` (resolved parameters); records the results. Returns the metrics.
std::vector<std::pair<std::string, double>> evaluate_run(int64_t run_id, const config::ComponentChoice& evaluator,
                                                         const loader::Registry& registry, store::Store& store,
                                                         bool baselines = false);

// `jepa export`: writes a stored run's weights for Python's torch.load; returns the file's top-level keys.
std::vector<std::string> export_run(int64_t run_id, const std::filesystem::path& output, bool module_prefix,
                                    const loader::Registry& registry, store::Store& store);

}  // namespace jepa::train
