// launcher = "slurm": a sweep's trials as SLURM jobs, followed from the submitting host.
#pragma once

#include "store/store.hpp"
#include "sweep/proposer.hpp"
#include "sweep/scheduler.hpp"

#include <nlohmann/json.hpp>

namespace jepa::sweep {

// Every trial is one sbatch job (not a job array, so that each trial's submission, adoption
// after a host crash, resubmission and cancellation stay independent). The host stays the only
// writer of the database. A sequential method asks `proposer` for a new point whenever fewer than
// max_parallel jobs are in the queue. False when it was interrupted (resume it later).
bool run_slurm(store::Store& store, int64_t sweep_id, const nlohmann::json& spec_json, const SweepRunOptions& options,
               Proposer& proposer);

}  // namespace jepa::sweep
