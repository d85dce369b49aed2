// Which swept parameters mattered for reaching the best trials: PED-ANOVA (Watanabe et al. 2023,
// "PED-ANOVA: Efficiently Quantifying Hyperparameter Importance in Arbitrary Subspaces"), the
// evaluator Optuna made its default in v5. Behind `jepa compare --importance` and the `jepa ui`
// sweep page; docs/importance.md says what the numbers mean and when to distrust them.
//
// Per parameter, a 1-D Parzen estimate of its values among the top trials (the best 10%) is
// compared with the estimate among all trials by the Pearson divergence
//   sum_g p_all(g) * (p_top(g) / p_all(g) - 1)^2
// over a grid of its values, scaled by (top / all)^2 so that parameters compare with one another.
// No model is fitted: the cost is linear in the trials, and a parameter present in only some
// trials (a conditional one) is measured over the trials that have it.
#pragma once

#include "query/runs.hpp"
#include "store/store.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace jepa::query {

// One swept parameter as importance sees it.
struct ParamSpace {
  std::string key;
  bool categorical = false;
  // Numeric parameters: the range (inclusive); when high <= low (unknown), the range of the
  // values the trials took is used instead.
  double low = 0.0;
  double high = 0.0;
  bool log = false;      // estimated in log space (log_uniform, int with log = true)
  bool integer = false;  // int: a grid of the integers themselves when there are at most 50
  double step = 0.0;     // a stepped uniform's step (0: continuous); its values are the grid when <= 50
  // Categorical parameters: the choices as `--set` text; empty = the values the trials took.
  std::vector<std::string> choices;
};

// How a sweep is judged: the metric, its direction, and whether a trial's value is its last or its
// best point of that metric.
struct Objective {
  std::string metric;
  bool maximize = false;
  bool best = false;   // "value": "best" in the spec: a trial counts with its best point, not its last
  std::string source;  // "objective", "pruning" or "" (not in the spec): said in the output
};

struct ImportanceRow {
  std::string param;
  double importance = 0.0;  // scaled Pearson divergence (comparable across parameters)
  double share = 0.0;       // importance / sum of importances (0 when the sum is 0)
  int64_t n = 0;            // trials that have the parameter with a usable value
  int64_t top = 0;          // of those, how many are top trials
};

struct Importance {
  std::vector<ImportanceRow> rows;  // descending importance; empty when there were too few trials
  int64_t trials = 0;               // trials with a finite objective value
  int64_t top = 0;                  // top trials (ties with the last one included)
  double quantile = 0.1;            // the top quantile asked for
  bool reliable = false;            // at least kMinReliableTop top trials
  std::string metric;
  bool maximize = false;
  std::string note;  // one line: method, quantile, counts, and "unreliable: ..." when so
};

// Fewer top trials than this make the top set's estimate mostly its prior: still computed, flagged.
constexpr int64_t kMinReliableTop = 5;
// Below this there is no top set distinct from the whole: nothing is computed.
constexpr int64_t kMinTrials = 3;

// PED-ANOVA over `rows` (runs whose latest `metric` is not finite are left out). The top set is
// the best ceil(0.1 * n) trials, at least 2, plus any trial tied with the last of them; the
// region set is every trial. Parameters that take one value only get 0.
Importance ped_anova(const std::vector<RunRow>& rows, const std::vector<ParamSpace>& space, const std::string& metric,
                     bool maximize, double top_quantile = 0.1);

// The search space recorded in a sweep's spec JSON (`"params": [{"key", "kind", "choices" |
// "low", "high", "step", "log"}]`); empty when the spec has none.
std::vector<ParamSpace> space_from_spec_json(const nlohmann::json& spec);

// The space of a sweep made by hand: every parameter that varies across `rows` (seeds and
// execution settings aside), numeric over min..max when every value reads as a number, else
// categorical over the values seen.
std::vector<ParamSpace> infer_space(const std::vector<RunRow>& rows);

// The spec's objective (`"objective": {"metric", "mode", "value"}`), else its pruning metric and
// mode; metric "" when neither is recorded.
Objective objective_from_spec_json(const nlohmann::json& spec);

// Replaces each row's `metric` by its best point (max or min over the run's history, from the
// store's per-run summary), for objectives whose value is "best".
void use_best_values(const store::Store& store, std::vector<RunRow>& rows, const std::string& metric, bool maximize);

// The table `jepa compare --importance` prints, and its JSON (`--json`, the ui's sweep page).
std::string format_importance(const Importance& imp);
nlohmann::json importance_json(const Importance& imp);

}  // namespace jepa::query
