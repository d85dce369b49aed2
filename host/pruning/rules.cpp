#include "pruning/rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace jepa::pruning {
namespace {

// Strictly better in the spec's direction; non-finite values lose to every finite one, so a
// diverged trial never sets a cutoff or a best.
bool better(double a, double b, bool maximize) {
  if (!std::isfinite(a)) return false;
  if (!std::isfinite(b)) return true;
  return maximize ? a > b : a < b;
}

// 4 significant digits keeps reasons readable in `jepa runs` while still telling the values apart.
std::string num(double v) {
  return fmt::format("{:.4g}", v);
}

// Best finite value over the entries at steps <= `step`; nullopt when there is none.
std::optional<double> best_up_to(const History& h, int64_t step, bool maximize) {
  std::optional<double> best;
  for (auto it = h.begin(); it != h.end() && it->first <= step; ++it) {
    if (!std::isfinite(it->second)) continue;
    if (!best || better(it->second, *best, maximize)) best = it->second;
  }
  return best;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2.0;
}

std::optional<std::string> median_rule(const PruningSpec& spec, const History& mine, const std::vector<History>& others,
                                       int64_t step) {
  const std::optional<double> best = best_up_to(mine, step, spec.maximize);
  if (!best) return std::nullopt;
  std::vector<double> bests;
  for (const History& other : others) {
    // An other that has not logged up to `step` yet would be compared at an earlier, usually worse
    // point of its training, which would make the median too lenient or too harsh by chance.
    if (other.empty() || other.rbegin()->first < step) continue;
    if (const auto b = best_up_to(other, step, spec.maximize)) bests.push_back(*b);
  }
  const auto needed = static_cast<size_t>(std::max<int64_t>(spec.min_trials, 1));
  if (bests.size() < needed) return std::nullopt;
  const double m = median(bests);
  if (!better(m, *best, spec.maximize)) return std::nullopt;
  return fmt::format("median rule on {} at step {}: best {} is worse than the median {} of {} other trials",
                     spec.metric, step, num(*best), num(m), bests.size());
}

// Value at the first reported step >= rung; nullopt when the trial has not reached the rung.
std::optional<double> rung_value(const History& h, int64_t rung) {
  const auto it = h.lower_bound(rung);
  if (it == h.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> asha_rung(const PruningSpec& spec, double mine, const std::vector<History>& others,
                                     int64_t rung, int64_t step) {
  std::vector<double> values{mine};
  for (const History& other : others) {
    if (const auto v = rung_value(other, rung)) values.push_back(*v);
  }
  const int64_t n = static_cast<int64_t>(values.size());
  if (n < spec.reduction) return std::nullopt;
  const int64_t keep = (n + spec.reduction - 1) / spec.reduction;
  std::sort(values.begin(), values.end(), [&](double a, double b) { return better(a, b, spec.maximize); });
  const double cutoff = values[static_cast<size_t>(keep - 1)];
  if (!better(cutoff, mine, spec.maximize)) return std::nullopt;
  return fmt::format("asha on {} at rung {} (step {}): {} is outside the top {} of {} (cutoff {})", spec.metric, rung,
                     step, num(mine), keep, n, num(cutoff));
}

std::optional<std::string> asha_rule(const PruningSpec& spec, const History& mine, const std::vector<History>& others,
                                     int64_t step) {
  if (spec.grace_steps < 1 || spec.reduction < 2) return std::nullopt;
  const auto at = mine.find(step);
  if (at == mine.end()) return std::nullopt;  // `step` is not one of this trial's reported steps
  const int64_t previous = at == mine.begin() ? std::numeric_limits<int64_t>::min() : std::prev(at)->first;
  // A sparse log can cross several rungs in one step; the trial must hold its place at each.
  for (int64_t rung = spec.grace_steps; rung <= step;) {
    if (previous < rung) {
      if (auto reason = asha_rung(spec, at->second, others, rung, step)) return reason;
    }
    if (rung > step / spec.reduction) break;  // the next rung is past `step` (and may overflow)
    rung *= spec.reduction;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> should_prune(const PruningSpec& spec, const History& mine,
                                        const std::vector<History>& others, int64_t step) {
  const bool median = spec.rule == "median";
  if (!median && spec.rule != "asha") return std::nullopt;
  if (median && step < spec.warmup_steps) return std::nullopt;
  const auto latest = mine.upper_bound(step);
  if (latest == mine.begin()) return std::nullopt;  // nothing reported yet
  const double value = std::prev(latest)->second;
  if (!std::isfinite(value)) {
    return fmt::format("{} on {} at step {}: the value {} is non-finite (the trial diverged)",
                       median ? "median rule" : "asha", spec.metric, std::prev(latest)->first, num(value));
  }
  return median ? median_rule(spec, mine, others, step) : asha_rule(spec, mine, others, step);
}

PruningSpec pruning_from_json(const nlohmann::json& spec_json) {
  PruningSpec p;
  if (!spec_json.is_object() || !spec_json.contains("pruning")) return p;
  const auto& j = spec_json.at("pruning");
  p.rule = j.value("rule", p.rule);
  p.metric = j.value("metric", p.metric);
  p.maximize = j.value("mode", std::string("min")) == "max";
  p.warmup_steps = j.value("warmup_steps", p.warmup_steps);
  p.min_trials = j.value("min_trials", p.min_trials);
  p.grace_steps = j.value("grace_steps", p.grace_steps);
  p.reduction = j.value("reduction", p.reduction);
  return p;
}

}  // namespace jepa::pruning
