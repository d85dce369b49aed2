// launcher = "local": a sweep's trials as child processes on this machine's device slots.
#pragma once

#include "store/store.hpp"
#include "sweep/proposer.hpp"
#include "sweep/scheduler.hpp"

#include <nlohmann/json.hpp>

namespace jepa::sweep {

// Runs the sweep's pending and interrupted trials, and asks `proposer` for new points as slots
// free (a sequential method). False when it was interrupted (resume it later).
bool run_local(store::Store& store, int64_t sweep_id, const nlohmann::json& spec_json, const SweepRunOptions& options,
               Proposer& proposer);

}  // namespace jepa::sweep
