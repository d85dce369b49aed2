#include "query/importance.hpp"

#include "query/run_json.hpp"
#include "query/table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>

namespace jepa::query {
namespace {

using nlohmann::json;

// The grid a numeric parameter's densities are compared on (the paper's and Optuna's n_steps).
constexpr int kGridPoints = 50;
// The prior's weight against one trial's kernel: with few top trials it keeps p_top from being a
// spike that any one lucky trial would make "important".
constexpr double kPriorWeight = 1.0;
// The narrowest kernel, in grid steps (Optuna's floor: 1.64 sigma, 90% of the kernel, within half
// a step). A narrower one would put all of a trial's mass on its nearest grid point, so the
// divergence would depend on where the grid happens to fall; it is also what a set whose values
// are all equal (Scott's width 0) gets.
constexpr double kMinBandwidthSteps = 0.5 / 1.64;

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Linear interpolation between order statistics (numpy's default quantile).
double quantile_of_sorted(const std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(pos));
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

// Scott's rule as the paper writes it: 1.059 * min(IQR / 1.34, sd) * n^(-1/5); 0 when it is
// undefined (one value) or degenerate (IQR or sd 0), the caller's floor then applies.
double scott_bandwidth(std::vector<double> xs) {
  const size_t n = xs.size();
  if (n < 2) return 0.0;
  std::sort(xs.begin(), xs.end());
  double mean = 0.0;
  for (double x : xs) mean += x;
  mean /= static_cast<double>(n);
  double ss = 0.0;
  for (double x : xs) ss += (x - mean) * (x - mean);
  const double sd = std::sqrt(ss / static_cast<double>(n - 1));
  const double iqr = quantile_of_sorted(xs, 0.75) - quantile_of_sorted(xs, 0.25);
  return 1.059 * std::min(iqr / 1.34, sd) * std::pow(static_cast<double>(n), -0.2);
}

void normalise(std::vector<double>& p) {
  double sum = 0.0;
  for (double v : p) sum += v;
  if (sum > 0.0) {
    for (double& v : p) v /= sum;
  }
}

// A Parzen estimate on the grid (points in the parameter's estimation space, log or linear):
// one Gaussian kernel per observation, each normalised over the grid so that a trial near a
// bound weighs as much as one in the middle, plus a uniform prior of weight kPriorWeight.
std::vector<double> parzen(const std::vector<double>& grid, const std::vector<double>& xs) {
  const size_t g = grid.size();
  std::vector<double> p(g, kPriorWeight / static_cast<double>(g));
  const double spacing = g > 1 ? (grid.back() - grid.front()) / static_cast<double>(g - 1) : 1.0;
  const double h = std::max(scott_bandwidth(xs), kMinBandwidthSteps * spacing);
  std::vector<double> k(g);
  for (double x : xs) {
    for (size_t i = 0; i < g; ++i) {
      const double z = (grid[i] - x) / h;
      k[i] = std::exp(-0.5 * z * z);
    }
    normalise(k);
    for (size_t i = 0; i < g; ++i) p[i] += k[i];
  }
  normalise(p);
  return p;
}

// Categorical: (count + prior share) per category, normalised.
std::vector<double> category_probabilities(const std::vector<size_t>& idx, size_t categories) {
  std::vector<double> p(categories, kPriorWeight / static_cast<double>(categories));
  for (size_t i : idx) p[i] += 1.0;
  normalise(p);
  return p;
}

// sum_g p_region(g) * (p_top(g) / p_region(g) - 1)^2; p_region > 0 everywhere thanks to its prior.
double pearson_divergence(const std::vector<double>& top, const std::vector<double>& region) {
  double d = 0.0;
  for (size_t i = 0; i < top.size(); ++i) {
    const double r = top[i] / region[i] - 1.0;
    d += region[i] * r * r;
  }
  return d;
}

// The grid of a numeric parameter in its estimation space: its own values when it has at most
// kGridPoints of them (an int, a stepped uniform), else kGridPoints evenly spaced points.
std::vector<double> numeric_grid(const ParamSpace& s, double low, double high, bool log) {
  auto t = [&](double v) { return log ? std::log(v) : v; };
  const double step = s.integer ? std::max(1.0, s.step) : s.step;
  if (step > 0.0) {
    const double count = std::floor((high - low) / step + 1e-9) + 1.0;
    if (count <= kGridPoints) {
      std::vector<double> grid;
      for (int k = 0; k < static_cast<int>(count); ++k) grid.push_back(t(low + k * step));
      return grid;
    }
  }
  std::vector<double> grid;
  const double a = t(low);
  const double b = t(high);
  for (int k = 0; k < kGridPoints; ++k) grid.push_back(a + (b - a) * k / (kGridPoints - 1));
  return grid;
}

struct ParamResult {
  double divergence = 0.0;
  int64_t n = 0;
  int64_t top = 0;
  bool constant = true;  // one value (or none) among the trials that have it: importance 0
};

// `values`: the parameter's text in each trial that has it; `in_top`: whether that trial is a top one.
ParamResult numeric_importance(const ParamSpace& s, const std::vector<std::string>& values,
                               const std::vector<bool>& in_top) {
  ParamResult r;
  bool log = s.log;
  std::vector<double> xs;
  std::vector<bool> top;
  for (size_t i = 0; i < values.size(); ++i) {
    const auto v = parse_number(values[i]);
    if (!v || (log && *v <= 0.0)) continue;  // text where a number belongs cannot be placed on the grid
    xs.push_back(*v);
    top.push_back(in_top[i]);
  }
  r.n = static_cast<int64_t>(xs.size());
  r.top = std::count(top.begin(), top.end(), true);
  if (xs.empty()) return r;
  const auto [min_it, max_it] = std::minmax_element(xs.begin(), xs.end());
  r.constant = *min_it == *max_it;
  if (r.constant) return r;
  double low = s.low;
  double high = s.high;
  if (!(high > low) || !std::isfinite(low) || !std::isfinite(high)) {
    low = *min_it;
    high = *max_it;
  }
  // Values recorded outside the range (a spec edited between trials) still count, at its edge.
  low = std::min(low, *min_it);
  high = std::max(high, *max_it);
  if (log && low <= 0.0) log = false;
  const std::vector<double> grid = numeric_grid(s, low, high, log);
  std::vector<double> region_x;
  std::vector<double> top_x;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = log ? std::log(xs[i]) : xs[i];
    region_x.push_back(x);
    if (top[i]) top_x.push_back(x);
  }
  r.divergence = pearson_divergence(parzen(grid, top_x), parzen(grid, region_x));
  return r;
}

ParamResult categorical_importance(const ParamSpace& s, const std::vector<std::string>& values,
                                   const std::vector<bool>& in_top) {
  ParamResult r;
  std::vector<std::string> categories = s.choices;
  // A run's text may spell a numeric choice differently ("5e-4" in the spec, "0.0005" stored).
  auto index_of = [&](const std::string& v) {
    for (size_t c = 0; c < categories.size(); ++c) {
      if (categories[c] == v) return c;
    }
    const auto x = parse_number(v);
    for (size_t c = 0; x && c < categories.size(); ++c) {
      const auto y = parse_number(categories[c]);
      if (y && *x == *y) return c;
    }
    categories.push_back(v);
    return categories.size() - 1;
  };
  std::vector<size_t> region_idx;
  std::vector<size_t> top_idx;
  for (size_t i = 0; i < values.size(); ++i) {
    const size_t c = index_of(values[i]);
    region_idx.push_back(c);
    if (in_top[i]) top_idx.push_back(c);
  }
  r.n = static_cast<int64_t>(region_idx.size());
  r.top = static_cast<int64_t>(top_idx.size());
  r.constant = std::set<size_t>(region_idx.begin(), region_idx.end()).size() <= 1;
  if (r.constant) return r;
  r.divergence = pearson_divergence(category_probabilities(top_idx, categories.size()),
                                    category_probabilities(region_idx, categories.size()));
  return r;
}

std::optional<double> json_number(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}

std::string choice_text(const json& c) {
  return c.is_string() ? c.get<std::string>() : c.dump();
}

std::string percent(double share) {
  return fmt::format("{:.1f}%", 100.0 * share);
}

}  // namespace

Importance ped_anova(const std::vector<RunRow>& rows, const std::vector<ParamSpace>& space, const std::string& metric,
                     bool maximize, double top_quantile) {
  Importance imp;
  imp.metric = metric;
  imp.maximize = maximize;
  imp.quantile = top_quantile;

  std::vector<const RunRow*> trials;
  std::vector<double> ys;
  for (const auto& r : rows) {
    auto it = r.metrics.find(metric);
    if (it == r.metrics.end() || !std::isfinite(it->second)) continue;
    trials.push_back(&r);
    ys.push_back(it->second);
  }
  const int64_t n = static_cast<int64_t>(trials.size());
  imp.trials = n;
  const std::string by = fmt::format("{} ({} is better)", metric, maximize ? "higher" : "lower");
  if (n < kMinTrials) {
    imp.note =
        fmt::format("PED-ANOVA needs at least {} finished trials with a finite {}; found {}", kMinTrials, metric, n);
    return imp;
  }

  // Top set: the best ceil(q * n), at least 2 (one trial is no distribution), and every trial
  // tied with the last of them, so that the set does not depend on the order of ties.
  std::vector<double> sorted = ys;
  if (maximize) {
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
  } else {
    std::sort(sorted.begin(), sorted.end());
  }
  // The epsilon keeps 0.1 * 30 = 3.0000000000000004 from becoming 4.
  const auto by_quantile = static_cast<int64_t>(std::ceil(top_quantile * static_cast<double>(n) - 1e-9));
  const int64_t k = std::clamp<int64_t>(by_quantile, 2, n);
  const double cutoff = sorted[static_cast<size_t>(k - 1)];
  std::vector<bool> in_top(trials.size());
  for (size_t i = 0; i < trials.size(); ++i) {
    in_top[i] = maximize ? ys[i] >= cutoff : ys[i] <= cutoff;
    imp.top += in_top[i] ? 1 : 0;
  }
  imp.reliable = imp.top >= kMinReliableTop;

  double sum = 0.0;
  for (const auto& s : space) {
    std::vector<std::string> values;
    std::vector<bool> top;
    for (size_t i = 0; i < trials.size(); ++i) {
      auto it = trials[i]->params.find(s.key);
      if (it == trials[i]->params.end()) continue;  // conditional: measured over the trials that have it
      values.push_back(it->second);
      top.push_back(in_top[i]);
    }
    const ParamResult pr = s.categorical ? categorical_importance(s, values, top) : numeric_importance(s, values, top);
    ImportanceRow row{s.key, 0.0, 0.0, pr.n, pr.top};
    if (!pr.constant && pr.n > 0) {
      // The paper's local importance: (|top| / |region|)^2 times the divergence, so that a
      // parameter measured over a subset of the trials stays on the same scale as the others.
      const double q = static_cast<double>(pr.top) / static_cast<double>(pr.n);
      row.importance = q * q * pr.divergence;
    }
    sum += row.importance;
    imp.rows.push_back(row);
  }
  for (auto& row : imp.rows) row.share = sum > 0.0 ? row.importance / sum : 0.0;
  std::stable_sort(imp.rows.begin(), imp.rows.end(), [](const ImportanceRow& a, const ImportanceRow& b) {
    return a.importance != b.importance ? a.importance > b.importance : a.param < b.param;
  });

  imp.note = fmt::format("PED-ANOVA: top {:g}%{} = {} of {} trials by {}, against all of them", 100.0 * top_quantile,
                         by_quantile < 2 ? " (at least 2)" : "", imp.top, n, by);
  if (imp.top == n) imp.note += "; every trial ties with the best, so nothing stands out";
  if (!imp.reliable) {
    // The smallest n whose top quantile holds kMinReliableTop trials, so the note says what to run.
    const auto enough = static_cast<int64_t>(std::floor((kMinReliableTop - 1) / top_quantile + 1e-9)) + 1;
    imp.note += fmt::format("; unreliable: fewer than {} top trials (that takes {} trials)", kMinReliableTop, enough);
  }
  return imp;
}

std::vector<ParamSpace> space_from_spec_json(const nlohmann::json& spec) {
  std::vector<ParamSpace> out;
  if (!spec.is_object() || !spec.contains("params") || !spec["params"].is_array()) return out;
  for (const auto& p : spec["params"]) {
    if (!p.is_object() || !p.contains("key") || !p["key"].is_string()) continue;
    ParamSpace s;
    s.key = p["key"].get<std::string>();
    const std::string kind = p.contains("kind") && p["kind"].is_string() ? p["kind"].get<std::string>() : "";
    const auto low = json_number(p, "low");
    const auto high = json_number(p, "high");
    const bool numeric = kind == "uniform" || kind == "log_uniform" || kind == "int" ||
                         (kind != "choice" && low && high && !p.contains("choices"));
    if (!numeric) {
      s.categorical = true;
      if (p.contains("choices") && p["choices"].is_array()) {
        for (const auto& c : p["choices"]) s.choices.push_back(choice_text(c));
      }
    } else {
      s.low = low.value_or(0.0);
      s.high = high.value_or(0.0);
      s.step = json_number(p, "step").value_or(0.0);
      s.integer = kind == "int";
      s.log =
          kind == "log_uniform" || (s.integer && p.contains("log") && p["log"].is_boolean() && p["log"].get<bool>());
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<ParamSpace> infer_space(const std::vector<RunRow>& rows) {
  std::vector<ParamSpace> out;
  for (const auto& key : differing_params(rows)) {
    ParamSpace s;
    s.key = key;
    std::vector<double> xs;
    std::set<std::string> texts;
    bool numeric = true;
    bool integral = true;
    for (const auto& r : rows) {
      auto it = r.params.find(key);
      if (it == r.params.end()) continue;
      texts.insert(it->second);
      const auto v = parse_number(it->second);
      numeric = numeric && v.has_value();
      if (v) {
        xs.push_back(*v);
        integral = integral && std::floor(*v) == *v;
      }
    }
    if (numeric && !xs.empty()) {
      const auto [lo, hi] = std::minmax_element(xs.begin(), xs.end());
      s.low = *lo;
      s.high = *hi;
      s.integer = integral;
    } else {
      s.categorical = true;
      s.choices.assign(texts.begin(), texts.end());
    }
    out.push_back(std::move(s));
  }
  return out;
}

Objective objective_from_spec_json(const nlohmann::json& spec) {
  Objective o;
  if (!spec.is_object()) return o;
  auto text = [](const json& j, const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  if (spec.contains("objective") && spec["objective"].is_object() && !text(spec["objective"], "metric").empty()) {
    const json& j = spec["objective"];
    o.metric = text(j, "metric");
    o.maximize = text(j, "mode") == "max";
    o.best = text(j, "value") == "best";
    o.source = "objective";
  } else if (spec.contains("pruning") && spec["pruning"].is_object() && !text(spec["pruning"], "metric").empty()) {
    const json& j = spec["pruning"];
    o.metric = text(j, "metric");
    o.maximize = text(j, "mode") == "max";
    o.source = "pruning";
  }
  return o;
}

void use_best_values(const store::Store& store, std::vector<RunRow>& rows, const std::string& metric, bool maximize) {
  if (rows.empty()) return;
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < rows.size(); ++i) index[rows[i].id] = i;
  std::vector<int64_t> ids;
  for (const auto& [id, i] : index) ids.push_back(id);
  store.query(
      "SELECT run_id, min_value, max_value FROM metric_summary WHERE key = ? AND run_id IN (SELECT value FROM "
      "json_each(?))",
      {metric, json(ids).dump()},
      [&](const store::Row& q) { rows[index.at(q.int64(0))].metrics[metric] = q.real(maximize ? 2 : 1); });
}

std::string format_importance(const Importance& imp) {
  std::string out = imp.note + "\n";
  if (imp.rows.empty()) return out;
  TextTable t({"param", "importance", "share", "n", "top"});
  for (const auto& r : imp.rows) {
    t.add_row({r.param, format_number(r.importance), percent(r.share), std::to_string(r.n), std::to_string(r.top)});
  }
  out += "\n" + t.render();
  out += "(n: trials that have the parameter; top: how many of them are top trials)\n";
  return out;
}

nlohmann::json importance_json(const Importance& imp) {
  json params = json::array();
  for (const auto& r : imp.rows) {
    params.push_back(
        {{"param", r.param}, {"importance", r.importance}, {"share", r.share}, {"n", r.n}, {"top", r.top}});
  }
  return {{"method", "ped-anova"},    {"metric", imp.metric}, {"mode", imp.maximize ? "max" : "min"},
          {"quantile", imp.quantile}, {"trials", imp.trials}, {"top", imp.top},
          {"reliable", imp.reliable}, {"note", imp.note},     {"params", params}};
}

}  // namespace jepa::query
