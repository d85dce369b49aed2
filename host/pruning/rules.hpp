// Pruning rules: pure decisions over the values that the trials of a sweep reported for one
// metric, so they are tested without processes or a database. A training run that is a sweep
// trial asks after each point it logs for the sweep's pruning metric (train/trial_pruner.hpp); a
// "prune" answer ends the trial as PRUNED with the reason. Its own room, below both training and
// the sweep scheduler, so that training never reaches up into the sweep room.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace jepa::pruning {

// The [sweep.pruning] table (sweep/spec.hpp documents the keys).
struct PruningSpec {
  std::string rule = "none";  // none | median | asha
  std::string metric = "train/loss";
  bool maximize = false;  // mode = "max"
  int64_t warmup_steps = 0;
  int64_t min_trials = 3;
  int64_t grace_steps = 100;
  int64_t reduction = 3;
};

// The pruning rule of a sweep's stored spec (sweeps.spec_json); missing keys take the defaults
// (rule "none").
PruningSpec pruning_from_json(const nlohmann::json& spec_json);

// One other trial's history of the pruning metric: step -> value (NaN values are never better).
using History = std::map<int64_t, double>;

// Decides whether a trial stops after logging `step` of spec.metric. `mine` is this trial's own
// history (entries after `step` are ignored); `others` are the other trials of the sweep, in any
// state and possibly ahead of this one. Better means lower, or higher with spec.maximize; worse
// means strictly worse, so ties continue. Non-finite values (NaN, inf) are never better.
//
// none: never prunes.
// median (as Optuna's MedianPruner): from step >= warmup_steps on. This trial's best finite value
// over its steps <= `step` is compared with the median (mean of the middle two when even) of the
// other trials' best finite values over their steps <= `step`, counting only the others that
// reached `step`: a finite value at some step <= `step` and a latest reported step >= `step`
// (trials log at the same cadence, so a trial that reached `step` has logged around it). Prunes
// when this trial is worse than the median of at least max(min_trials, 1) such others.
// asha (asynchronous successive halving): rungs at grace_steps * reduction^k, k = 0, 1, ... A trial
// meets a rung at the first of its reported steps >= the rung, and its value at the rung is the
// value reported there (for every trial alike). When `step` meets rungs (this trial's previous
// step < rung <= `step`), the n trials at each rung are this one plus the others with a reported
// step >= the rung; this one continues if it is within the top ceil(n / reduction) of their rung
// values (ties at the cutoff continue), or if n < reduction. Between rungs there is no decision.
// A non-finite value at the trial's latest step prunes it ("non-finite"): a diverged run never
// recovers. Under median that waits for warmup_steps (never prune before it) but not for
// min_trials; under asha it applies at any step, not only at rungs. grace_steps < 1 or
// reduction < 2 define no rungs (the spec loader rejects them).
//
// Returns the reason, with numbers to 4 significant digits ("median rule on train/loss at step
// 200: best 0.41 is worse than the median 0.33 of 4 other trials", "asha on
// rankme/effective_rank at rung 300 (step 300): 12.1 is outside the top 2 of 6 (cutoff 20.5)"),
// or nullopt to continue.
std::optional<std::string> should_prune(const PruningSpec& spec, const History& mine,
                                        const std::vector<History>& others, int64_t step);

}  // namespace jepa::pruning
