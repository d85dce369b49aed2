// Where a sweep's trials come from: the sampler seam. A grid or random sweep fixes every trial
// when it is created; a TPE sweep proposes one point at a time, when a slot frees (the local and
// SLURM runners) or when someone asks (`jepa sweep ask`). Every proposal is decided and stored in
// one write transaction, from the history in the database alone: nothing lives in memory between
// proposals, so a sweep killed at any moment and resumed asks exactly what it would have, and
// several askers at once never get the same trial.
//
// History (what TPE learns from): each trial of the sweep, one observation per (point, seed):
// COMPLETED with the objective (its last or best value), PRUNED with the pruning metric's last
// step and value, RUNNING, KILLED (to be resumed) or not yet started as running (the constant
// liar); FAILED trials, and COMPLETED ones without a finite objective, are left out, as Optuna
// leaves out failed trials. Warm-start sweeps add their finished trials first.
#pragma once

#include "store/store.hpp"
#include "sweep/spec.hpp"
#include "sweep/tpe.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace jepa::sweep {

// The job id of trials handed out by `jepa sweep ask`: the sweep's own runners leave them alone.
inline constexpr const char* kExternalJob = "external";

// The run of a trial that the host creates itself (a trial that died before its process made one,
// a SLURM trial before its job is submitted, a trial handed out by `jepa sweep ask`): named
// <sweep>-tNNN, linked to the trial in the same transaction (so never two), its parameters the
// trial's overrides. Returns its id.
int64_t create_trial_run(store::Store& store, int64_t sweep_id, const std::string& sweep_name,
                         const std::string& experiment, const store::SweepTrialRecord& trial);

// The observations of a sweep's trials for `spec`'s objective and pruning metric.
std::vector<Observation> sweep_history(const store::Store& store, int64_t sweep_id, const SweepSpec& spec,
                                       bool finished_only = false);

class Proposer {
 public:
  Proposer(store::Store& store, int64_t sweep_id, SweepSpec spec);

  const SweepSpec& spec() const { return spec_; }
  bool sequential() const { return spec_.method == "tpe"; }
  // Trials the sweep will have in all: its rows (grid, random) or the budget times the seeds.
  int64_t total_trials() const;
  // A sequential sweep with budget left.
  bool can_ask() const;
  // Claims the next point: decides it and stores its trials (one per seed; their job id is
  // `job_id`) in one write transaction. Returns their indices; empty when the budget is spent.
  std::vector<int64_t> ask(const std::string& job_id = "");

  struct Handout {
    Trial trial;
    int64_t run_id = 0;
  };
  // `jepa sweep ask`: the next trial for a caller outside the sweep's runners: a seed replica
  // of a point asked earlier from outside, else a new point's first trial. Its run is created
  // RUNNING at once (so nobody else gets it); `tell` records its end.
  Handout ask_external();
  // `jepa sweep tell`: the result of a handed-out trial. Throws SweepError (and changes
  // nothing) for an unknown trial, one the sweep runs itself, one that already has a result, or
  // a value that is not a finite number.
  enum class Outcome { completed, pruned, failed };
  void tell(int64_t index, Outcome outcome, std::optional<double> value, std::optional<int64_t> step,
            const std::string& reason);

 private:
  int64_t asked_points(const std::vector<store::SweepTrialRecord>& rows) const;
  std::vector<Observation> warm_history() const;

  store::Store& store_;
  int64_t sweep_id_;
  SweepSpec spec_;
};

// Checks the warm-start sweeps of `spec` against `store` (they exist and vary the same
// parameters): SweepError naming the first that does not.
void check_warm_start(const store::Store& store, const SweepSpec& spec);

}  // namespace jepa::sweep
