// Runs as JSON and the columns a runs table shows by default: one definition for `jepa runs
// --json`, `jepa show --json`, `jepa export --format json` and the `jepa ui` pages.
#pragma once

#include "query/runs.hpp"
#include "store/store.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace jepa::query {

// JSON has no NaN: a diverged metric is null.
nlohmann::json number_json(double v);

// id, name, status, reason, times, steps, seed, sweep, every parameter and latest metric.
nlohmann::json run_json(const RunRow& row);

// run_json plus what `jepa show` prints: resolved config, environment, plugins, per-metric
// summary (last, min, max, points), evaluations and artifacts.
nlohmann::json run_details_json(const store::Store& store, const RunRow& row);

// Parameters whose value is not the same in every row (seeds and execution settings aside).
std::vector<std::string> differing_params(const std::vector<RunRow>& rows);

// Metrics worth a column by default: the final training loss and evaluation results (at most
// 8), not the bookkeeping counts evaluators report alongside.
std::vector<std::string> metric_columns(const std::vector<RunRow>& rows);

// "encoder.params.depth" -> "encoder.depth": shorter table headers, still unambiguous.
std::string short_param(const std::string& key);

}  // namespace jepa::query
