// Selecting runs from the results store: by id or name, sweep, `--where` filter, sort and
// limit, with their parameters and latest metrics. Reads only metric_summary for metrics, so
// answering stays fast with millions of metric points.
#pragma once

#include "store/store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace jepa::query {

struct RunSelection {
  std::vector<std::string> runs;     // ids or names; empty = every run
  std::optional<std::string> sweep;  // a sweep's name or id
  std::string where;                 // see filter.hpp
  std::string sort;                  // a field (see filter.hpp); a leading '-' sorts descending;
                                     // empty = newest first
  int64_t limit = 0;                 // 0 = no limit
  // The parameters to load into RunRow::params: nullopt = every one; a list, only those keys
  // (a page showing a few columns of 1,000 runs need not read their 60,000 parameters).
  std::optional<std::vector<std::string>> params;
};

struct RunRow {
  int64_t id = 0;
  std::string name;
  std::string status;
  std::string reason;
  std::string started_at;
  std::string ended_at;
  int64_t steps = 0;
  uint64_t seed = 0;
  std::optional<int64_t> sweep_id;
  std::string sweep;      // the sweep's name; empty when none
  std::string job_id;     // a SLURM trial's latest job (launcher = "slurm"); empty otherwise
  std::string job_state;  // as SLURM last reported it to the sweep host
  std::map<std::string, std::string> params;
  std::map<std::string, double> metrics;  // latest value per key (NaN when it was NaN)
};

// Throws FilterError (bad --where or --sort) or store::StoreError (unknown run or sweep).
std::vector<RunRow> select_runs(const store::Store& store, const RunSelection& selection);

// Fills RunRow::params with the given keys (nullopt: every parameter).
void load_params(const store::Store& store, std::vector<RunRow>& rows,
                 const std::optional<std::vector<std::string>>& keys);

// The parameters whose value is not the same in every row (a run lacking one differs), seeds
// and execution settings aside, in key order: run_json.hpp's differing_params, counted by
// SQLite from the params table, for rows selected without their parameters.
std::vector<std::string> differing_params(const store::Store& store, const std::vector<RunRow>& rows);

// Run duration in seconds from the ISO timestamps (NaN while running or when unparsable).
double duration_seconds(const RunRow& row);

}  // namespace jepa::query
