#include "query/compare.hpp"

#include "query/table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>
#include <stdexcept>

namespace jepa::query {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Numbers order as numbers, everything else as text, numbers first.
bool value_less(const std::string& a, const std::string& b) {
  char* ea = nullptr;
  char* eb = nullptr;
  const double da = std::strtod(a.c_str(), &ea);
  const double db = std::strtod(b.c_str(), &eb);
  const bool na = !a.empty() && *ea == '\0';
  const bool nb = !b.empty() && *eb == '\0';
  if (na && nb && da != db) return da < db;
  if (na != nb) return na;
  return a < b;
}

std::string label_of(size_t i) {
  std::string s;
  ++i;
  while (i > 0) {
    --i;
    s.insert(s.begin(), static_cast<char>('A' + i % 26));
    i /= 26;
  }
  return s;
}

std::string value_of(const RunRow& r, const std::string& key) {
  auto it = r.params.find(key);
  return it == r.params.end() ? std::string("(unset)") : it->second;
}

// Keys whose value is not the same in every run.
std::vector<std::string> differing(const std::vector<RunRow>& rows, const std::set<std::string>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) {
    for (const auto& r : rows) {
      if (value_of(r, k) != value_of(rows.front(), k)) {
        out.push_back(k);
        break;
      }
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// "1,2,3,4,7" -> "1-4,7": runs of three or more consecutive numbers become ranges.
template <class T>
std::string compact(const std::vector<T>& v) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (j - i >= 2) {
      parts.push_back(fmt::format("{}-{}", v[i], v[j]));
    } else {
      for (size_t k = i; k <= j; ++k) parts.push_back(fmt::format("{}", v[k]));
    }
    i = j + 1;
  }
  return join(parts, ",");
}

}  // namespace

bool is_seed_like(const std::string& p) {
  static const std::set<std::string> kKeys = {"run.name", "run.seed", "run.threads", "data.workers"};
  return kKeys.count(p) > 0 || p.rfind("checkpoint.", 0) == 0 || p.rfind("logging.", 0) == 0;
}

std::vector<RunRow> select_compared(const store::Store& store, RunSelection sel, bool any_status) {
  sel.sort = "id";
  if (!any_status) sel.where = sel.where.empty() ? "status = COMPLETED" : "(" + sel.where + ") and status = COMPLETED";
  return select_runs(store, sel);
}

Comparison compare_runs(const std::vector<RunRow>& rows, const CompareOptions& options) {
  Comparison c;
  c.runs = rows.size();
  if (rows.empty()) return c;

  std::set<std::string> all_params;
  for (const auto& r : rows) {
    for (const auto& [k, v] : r.params) all_params.insert(k);
  }
  std::set<std::string> grouping;
  if (options.group_by.empty()) {
    for (const auto& k : all_params) {
      if (!is_seed_like(k)) grouping.insert(k);
    }
  } else {
    for (const auto& k : options.group_by) {
      if (!all_params.count(k)) {
        throw std::invalid_argument(fmt::format("--group-by: no selected run has a parameter '{}'", k));
      }
      grouping.insert(k);
    }
  }
  c.varying = differing(rows, grouping);
  // Keep the order the user gave.
  if (!options.group_by.empty()) {
    std::vector<std::string> ordered;
    for (const auto& k : options.group_by) {
      if (std::find(c.varying.begin(), c.varying.end(), k) != c.varying.end() &&
          std::find(ordered.begin(), ordered.end(), k) == ordered.end()) {
        ordered.push_back(k);
      }
    }
    c.varying = ordered;
  }

  // Group runs by their values of the varying parameters, groups ordered by those values.
  std::map<std::vector<std::string>, std::vector<const RunRow*>> by_key;
  for (const auto& r : rows) {
    std::vector<std::string> key;
    for (const auto& k : c.varying) key.push_back(value_of(r, k));
    by_key[key].push_back(&r);
  }
  std::vector<std::vector<std::string>> keys;
  for (const auto& [k, v] : by_key) keys.push_back(k);
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), value_less);
  });

  if (!options.group_by.empty()) {
    std::set<std::string> rest;
    for (const auto& k : all_params) {
      if (!is_seed_like(k) && !grouping.count(k)) rest.insert(k);
    }
    std::set<std::string> mixed;
    for (const auto& [k, members] : by_key) {
      std::vector<RunRow> group_rows;
      for (const auto* m : members) group_rows.push_back(*m);
      for (const auto& d : differing(group_rows, rest)) mixed.insert(d);
    }
    c.mixed.assign(mixed.begin(), mixed.end());
  }

  // Metrics: the ones asked for, else every metric whose value is not identical in all runs.
  if (!options.metrics.empty()) {
    c.metrics = options.metrics;
  } else {
    std::set<std::string> keys_seen;
    for (const auto& r : rows) {
      for (const auto& [k, v] : r.metrics) keys_seen.insert(k);
    }
    for (const auto& k : keys_seen) {
      std::set<double> values;
      bool missing = false;
      for (const auto& r : rows) {
        auto it = r.metrics.find(k);
        if (it == r.metrics.end() || std::isnan(it->second)) {
          missing = true;
        } else {
          values.insert(it->second);
        }
      }
      if (values.size() > 1 || (missing && !values.empty())) c.metrics.push_back(k);
    }
    // Evaluation results first, then training curves' last values.
    std::stable_partition(c.metrics.begin(), c.metrics.end(),
                          [](const std::string& k) { return k.rfind("train/", 0) != 0; });
  }

  for (size_t i = 0; i < keys.size(); ++i) {
    Group g;
    g.label = label_of(i);
    for (size_t j = 0; j < c.varying.size(); ++j) g.values[c.varying[j]] = keys[i][j];
    for (const auto* r : by_key[keys[i]]) {
      g.runs.push_back(r->id);
      g.seeds.push_back(r->seed);
      for (const auto& m : c.metrics) {
        auto it = r->metrics.find(m);
        g.samples[m].push_back(it == r->metrics.end() ? kNaN : it->second);
      }
    }
    for (const auto& m : c.metrics) g.stats[m] = summarize(g.samples[m]);
    c.groups.push_back(std::move(g));
  }

  if (!options.baseline.empty()) {
    auto it =
        std::find_if(c.groups.begin(), c.groups.end(), [&](const Group& g) { return g.label == options.baseline; });
    if (it == c.groups.end()) {
      throw std::invalid_argument(
          fmt::format("--baseline: no group '{}' (groups are A..{})", options.baseline, c.groups.back().label));
    }
    c.baseline = static_cast<size_t>(it - c.groups.begin());
  }
  for (const auto& m : c.metrics) {
    auto& tests = c.tests[m];
    for (const auto& g : c.groups) {
      tests.push_back(&g == &c.groups[c.baseline] ? std::nullopt
                                                  : welch_t_test(c.groups[c.baseline].samples.at(m), g.samples.at(m)));
    }
  }
  return c;
}

std::string format_comparison(const Comparison& c) {
  if (c.runs == 0) return "no runs to compare\n";
  std::string out = fmt::format("{} run{} in {} group{}", c.runs, c.runs == 1 ? "" : "s", c.groups.size(),
                                c.groups.size() == 1 ? "" : "s");
  out += c.varying.empty()
             ? " (all runs share their parameters; seeds aside)\n"
             : fmt::format(" by {} (runs that differ only by seed share a group)\n", join(c.varying, ", "));
  if (!c.mixed.empty()) {
    out += fmt::format("note: runs within a group also differ in {}\n", join(c.mixed, ", "));
  }
  out += '\n';

  std::vector<std::string> header{"group"};
  header.insert(header.end(), c.varying.begin(), c.varying.end());
  header.insert(header.end(), {"runs", "seeds"});
  TextTable groups(header);
  for (const auto& g : c.groups) {
    std::vector<std::string> row{g.label};
    for (const auto& k : c.varying) row.push_back(g.values.at(k));
    row.push_back(compact(g.runs));
    std::vector<uint64_t> seeds = g.seeds;
    std::sort(seeds.begin(), seeds.end());
    row.push_back(compact(seeds));
    groups.add_row(row);
  }
  out += groups.render();

  const std::string& base = c.groups[c.baseline].label;
  for (const auto& m : c.metrics) {
    out += fmt::format("\n{}\n", m);
    std::vector<std::string> h{"group", "n", "mean", "sd", "95% CI"};
    if (c.groups.size() > 1) {
      h.push_back("vs " + base);
      h.push_back("p (Welch)");
    }
    TextTable t(h);
    for (size_t i = 0; i < c.groups.size(); ++i) {
      const auto& g = c.groups[i];
      const Summary& s = g.stats.at(m);
      std::vector<std::string> row{
          g.label, std::to_string(s.n), format_number(s.mean), format_number(s.sd),
          s.n >= 2 ? fmt::format("[{}, {}]", format_number(s.ci_low), format_number(s.ci_high)) : std::string("-")};
      if (c.groups.size() > 1) {
        const auto& w = c.tests.at(m)[i];
        if (i == c.baseline) {
          row.insert(row.end(), {"", ""});
        } else if (w) {
          row.push_back((w->diff >= 0 ? "+" : "") + format_number(w->diff, 3));
          row.push_back(format_number(w->p, 3));
        } else {
          const double diff = s.mean - c.groups[c.baseline].stats.at(m).mean;
          row.push_back(std::isnan(diff) ? "-" : (diff >= 0 ? "+" : "") + format_number(diff, 3));
          row.push_back("-");
        }
      }
      t.add_row(row);
    }
    out += t.render();
  }
  if (c.groups.size() > 1) {
    out += fmt::format(
        "\np: two-sided Welch t-test against group {}; '-' where a group has fewer than 2 runs with the metric\n",
        base);
  }
  return out;
}

nlohmann::json comparison_json(const Comparison& c) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
  nlohmann::json j;
  j["runs"] = c.runs;
  j["varying"] = c.varying;
  j["mixed"] = c.mixed;
  j["metrics"] = c.metrics;
  j["baseline"] = c.groups.empty() ? nlohmann::json() : nlohmann::json(c.groups[c.baseline].label);
  j["groups"] = nlohmann::json::array();
  for (size_t i = 0; i < c.groups.size(); ++i) {
    const auto& g = c.groups[i];
    nlohmann::json gj;
    gj["label"] = g.label;
    gj["params"] = g.values;
    gj["runs"] = g.runs;
    gj["seeds"] = g.seeds;
    for (const auto& m : c.metrics) {
      const Summary& s = g.stats.at(m);
      nlohmann::json mj{
          {"n", s.n}, {"mean", num(s.mean)}, {"sd", num(s.sd)}, {"ci95", {num(s.ci_low), num(s.ci_high)}}};
      nlohmann::json values = nlohmann::json::array();
      for (double v : g.samples.at(m)) values.push_back(num(v));
      mj["values"] = values;
      const auto& w = c.tests.at(m)[i];
      if (w) mj["welch"] = {{"diff", w->diff}, {"t", w->t}, {"df", w->df}, {"p", w->p}};
      gj["metrics"][m] = mj;
    }
    j["groups"].push_back(gj);
  }
  return j;
}

}  // namespace jepa::query
