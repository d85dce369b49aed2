// `jepa compare`: runs side by side. Runs whose parameters differ only by seed (and by settings
// that do not change results: name, threads, workers, checkpoint and logging) form one group;
// each group gets mean, standard deviation, count and a 95% confidence interval per metric, and
// a Welch t-test against the baseline group.
#pragma once

#include "query/runs.hpp"
#include "query/stats.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace jepa::query {

struct CompareOptions {
  std::vector<std::string> group_by;  // parameter keys; empty = every parameter that matters
  std::vector<std::string> metrics;   // empty = every metric that differs between runs
  std::string baseline;               // group label ("A", "B", ...); empty = the first group
};

struct Group {
  std::string label;                          // "A", "B", ..., "Z", "AA", ...
  std::map<std::string, std::string> values;  // the grouping parameters that differ between groups
  std::vector<int64_t> runs;
  std::vector<uint64_t> seeds;
  std::map<std::string, std::vector<double>> samples;  // metric -> one value per run (NaN if absent)
  std::map<std::string, Summary> stats;
};

struct Comparison {
  std::vector<std::string> varying;  // grouping parameters that differ between groups
  std::vector<std::string> mixed;    // with --group-by: other parameters that differ inside a group
  std::vector<std::string> metrics;
  std::vector<Group> groups;
  size_t baseline = 0;
  std::map<std::string, std::vector<std::optional<WelchTest>>> tests;  // metric -> per group, vs baseline
  size_t runs = 0;
};

// Parameters that never separate groups.
bool is_seed_like(const std::string& param);

// The runs a comparison takes from a selection: in id order, only COMPLETED ones unless
// `any_status` (a failed or pruned run's latest metric is not its result).
std::vector<RunRow> select_compared(const store::Store& store, RunSelection selection, bool any_status);

Comparison compare_runs(const std::vector<RunRow>& rows, const CompareOptions& options);
std::string format_comparison(const Comparison& c);
nlohmann::json comparison_json(const Comparison& c);

}  // namespace jepa::query
