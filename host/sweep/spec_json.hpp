// A sweep spec as stored with the sweep (sweeps.spec_json): what the trials of a sweep need to
// know later, such as the pruning rule, without the spec file.
#pragma once

#include "sweep/spec.hpp"

#include <nlohmann/json.hpp>

namespace jepa::sweep {

nlohmann::json spec_to_json(const SweepSpec& spec);
// Everything a recorded sweep needs back: its name, placement, pruning, objective and, for a TPE
// sweep that proposes its points while it runs, the space. Missing keys (sweeps recorded by
// older versions) take the defaults.
SweepSpec spec_from_json(const nlohmann::json& spec_json);
using pruning::pruning_from_json;

}  // namespace jepa::sweep
