// A sweep spec as stored with the sweep (sweeps.spec_json): what the trials of a sweep need to
// know later, such as the pruning rule, without the spec file.
#pragma once

#include "sweep/spec.hpp"

#include <nlohmann/json.hpp>

namespace jepa::sweep {

nlohmann::json spec_to_json(const SweepSpec& spec);
// Everything the scheduler needs back (name, placement, pruning); the parameter distributions
// are not read back: a recorded sweep's trials are fixed in the store. Missing keys take the
// defaults.
SweepSpec spec_from_json(const nlohmann::json& spec_json);
// Missing keys take PruningSpec's defaults (rule "none").
PruningSpec pruning_from_json(const nlohmann::json& spec_json);

}  // namespace jepa::sweep
