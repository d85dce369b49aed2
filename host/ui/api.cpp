#include "ui/api.hpp"

#include "query/compare.hpp"
#include "query/filter.hpp"
#include "query/importance.hpp"
#include "query/param_effect.hpp"
#include "query/run_json.hpp"
#include "query/runs.hpp"
#include "store/store.hpp"
#include "sweep/spec_json.hpp"
#include "ui/downsample.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <regex>
#include <set>

namespace jepa::ui {

namespace {

using nlohmann::json;

// A RUNNING run whose heartbeat is older than this is shown as stale (the runs commands would
// mark it KILLED; the UI writes nothing).
constexpr double kStaleSeconds = 60.0;

HttpError bad_request(const std::string& message) {
  return HttpError(400, message);
}

// The parameters of one request, checked against what the endpoint takes: a misspelled
// parameter is an error, not silently ignored.
class Args {
 public:
  Args(const Params& params, std::initializer_list<const char*> allowed) : params_(params) {
    for (const auto& [name, value] : params_) {
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return name == a; })) {
        std::vector<std::string> names(allowed.begin(), allowed.end());
        throw bad_request(names.empty() ? fmt::format("unknown parameter '{}': this endpoint takes none", name)
                                        : fmt::format("unknown parameter '{}' (this endpoint takes {})", name,
                                                      fmt::join(names, ", ")));
      }
    }
  }

  std::string text(const char* name, const std::string& fallback = "") const {
    if (params_.count(name) > 1) throw bad_request(fmt::format("parameter '{}' given more than once", name));
    auto it = params_.find(name);
    return it == params_.end() ? fallback : it->second;
  }

  int64_t integer(const char* name, int64_t fallback, int64_t lo, int64_t hi) const {
    const std::string s = text(name);
    if (s.empty()) return fallback;
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) {
      throw bad_request(fmt::format("parameter '{}' must be an integer from {} to {}, got '{}'", name, lo, hi, s));
    }
    return v;
  }

  bool flag(const char* name) const {
    const std::string s = text(name, "0");
    if (s == "1" || s == "true" || s == "yes" || s.empty()) return true;
    if (s == "0" || s == "false" || s == "no") return false;
    throw bad_request(fmt::format("parameter '{}' must be 1 or 0, got '{}'", name, s));
  }

  // Every value, repeated parameters and comma-separated lists alike.
  std::vector<std::string> list(const char* name) const {
    std::vector<std::string> out;
    for (const auto& v : all(name)) {
      size_t start = 0;
      while (start <= v.size()) {
        const size_t comma = v.find(',', start);
        std::string item = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty()) out.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    return out;
  }

  std::vector<std::string> all(const char* name) const {
    std::vector<std::string> out;
    const auto [b, e] = params_.equal_range(name);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    return out;
  }

 private:
  const Params& params_;
};

json values_json(const std::vector<double>& values) {
  json out = json::array();
  for (double v : values) out.push_back(std::isfinite(v) ? json(v) : json());
  return out;
}

json curve_json(const Curve& c, size_t max_points) {
  const Curve d = downsample(c, max_points);
  return {{"steps", d.steps}, {"values", values_json(d.values)}, {"count", c.steps.size()}};
}

// Curves straight from the metrics index, one statement for many runs (or many keys of one
// run): a page of 100 overlaid runs reads 250,000 points, so no per-point copies of the key.
// Column 0 names the curve a row belongs to (its run id or its key).
std::map<std::string, Curve> read_curves(const store::Store& store, const std::string& sql,
                                         const std::vector<store::SqlValue>& binds) {
  std::map<std::string, Curve> out;
  std::string last_group;
  Curve* current = nullptr;
  store.query(sql, binds, [&](const store::Row& q) {
    std::string group = q.text(0);
    if (current == nullptr || group != last_group) {
      current = &out[group];
      last_group = std::move(group);
    }
    current->steps.push_back(q.int64(1));
    current->values.push_back(q.real(2));
  });
  return out;
}

// The query room's errors, as HTTP: a bad filter or sort is the request's fault.
template <class F>
auto as_http_errors(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const query::FilterError& e) {
    throw bad_request(e.what());
  } catch (const std::invalid_argument& e) {
    throw bad_request(e.what());
  }
}

store::RunStatus parse_status(const std::string& s) {
  std::string up = s;
  std::transform(up.begin(), up.end(), up.begin(), [](unsigned char ch) { return std::toupper(ch); });
  try {
    return store::status_from_name(up);
  } catch (const store::StoreError& e) {
    throw bad_request(e.what());
  }
}

int64_t run_id_of(const store::Store& store, const std::string& run) {
  const auto record = store.find_run(run);
  if (!record) throw HttpError(404, fmt::format("no run '{}'", run));
  return record->id;
}

query::RunRow find_row(const store::Store& store, const std::string& run) {
  query::RunSelection sel;
  sel.runs = {std::to_string(run_id_of(store, run))};
  return query::select_runs(store, sel).at(0);
}

std::set<int64_t> stale_runs(const store::Store& store) {
  std::set<int64_t> ids;
  store.query(
      "SELECT id FROM runs WHERE status = 'RUNNING' AND (julianday('now') - julianday(heartbeat_at)) * 86400.0 > ?",
      {kStaleSeconds}, [&](const store::Row& q) { ids.insert(q.int64(0)); });
  return ids;
}

// Runs per status of each sweep (or of one), and trials recorded for it.
std::map<int64_t, json> sweep_progress(const store::Store& store, std::optional<int64_t> only) {
  std::map<int64_t, json> out;
  const std::vector<store::SqlValue> binds{only ? store::SqlValue(*only) : store::SqlValue()};
  store.query(
      "SELECT s.id, (SELECT COUNT(*) FROM sweep_trials t WHERE t.sweep_id = s.id), s.spec_json FROM sweeps s "
      "WHERE ?1 IS NULL OR s.id = ?1",
      binds, [&](const store::Row& q) {
        int64_t trials = q.int64(1);
        // A TPE sweep stores each point as it proposes it: its budget is what it will have.
        const json spec = json::parse(q.text(2), nullptr, false);
        if (spec.is_object() && spec.value("method", std::string()) == "tpe" && spec.contains("seeds")) {
          trials = std::max(trials, spec.value("trials", int64_t{0}) * static_cast<int64_t>(spec["seeds"].size()));
        }
        out[q.int64(0)] = {{"trials", trials}, {"started", 0}, {"COMPLETED", 0}, {"RUNNING", 0},
                           {"FAILED", 0},      {"KILLED", 0},  {"PRUNED", 0}};
      });
  store.query(
      "SELECT sweep_id, status, COUNT(*) FROM runs WHERE sweep_id IS NOT NULL AND (?1 IS NULL OR sweep_id = ?1) "
      "GROUP BY sweep_id, status",
      binds, [&](const store::Row& q) {
        auto it = out.find(q.int64(0));
        if (it == out.end()) return;
        it->second[q.text(1)] = q.int64(2);
        it->second["started"] = it->second["started"].get<int64_t>() + q.int64(2);
      });
  for (auto& [id, p] : out) {
    // Sweeps made by hand (runs put in a sweep without trials) count their runs as the trials.
    const int64_t trials = std::max(p["trials"].get<int64_t>(), p["started"].get<int64_t>());
    p["trials"] = trials;
    p["pending"] = trials - p["started"].get<int64_t>();
  }
  return out;
}

bool lower_is_better(const std::string& metric) {
  return metric.find("loss") != std::string::npos || metric.find("error") != std::string::npos;
}

}  // namespace

Api::Api(std::filesystem::path db, Engine engine) : db_(std::move(db)), engine_(std::move(engine)) {}

Api::~Api() = default;

std::shared_ptr<const store::Store> Api::open() const {
  std::unique_ptr<store::Store> s;
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (!pool_.empty()) {
      s = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  if (!s) s = std::make_unique<store::Store>(db_, store::OpenMode::read_only);
  return std::shared_ptr<const store::Store>(s.release(), [this](const store::Store* done) {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    pool_.emplace_back(const_cast<store::Store*>(done));
  });
}

json Api::runs(const Params& p) const {
  const Args a(p, {"where", "sort", "sweep", "status", "limit", "params", "metrics"});
  auto store = open();
  const std::string where = a.text("where");
  const query::SqlFilter filter = as_http_errors([&] { return query::parse_filter(where); });

  // Facets count over the filter alone, so that choosing a status or sweep keeps the others.
  json facets{{"status", json::object()}, {"sweeps", json::array()}};
  int64_t total = 0;
  store->query("SELECT r.status, COUNT(*) FROM runs r WHERE " + filter.sql + " GROUP BY r.status", filter.binds,
               [&](const store::Row& q) {
                 facets["status"][q.text(0)] = q.int64(1);
                 total += q.int64(1);
               });
  store->query("SELECT sw.id, sw.name, COUNT(*) FROM runs r JOIN sweeps sw ON sw.id = r.sweep_id WHERE " + filter.sql +
                   " GROUP BY sw.id ORDER BY sw.id",
               filter.binds, [&](const store::Row& q) {
                 facets["sweeps"].push_back({{"id", q.int64(0)}, {"name", q.text(1)}, {"runs", q.int64(2)}});
               });

  query::RunSelection sel;
  sel.where = where;
  sel.sort = a.text("sort");
  std::string statuses;
  for (const auto& s : a.list("status")) {
    statuses += fmt::format("{}status = {}", statuses.empty() ? "" : " or ", store::status_name(parse_status(s)));
  }
  if (!statuses.empty()) sel.where = where.empty() ? statuses : "(" + where + ") and (" + statuses + ")";
  const std::string sweep = a.text("sweep");
  if (!sweep.empty()) {
    if (!store->find_sweep(sweep)) throw HttpError(404, fmt::format("no sweep '{}'", sweep));
    sel.sweep = sweep;
  }
  const int64_t limit = a.integer("limit", 1000, 0, 1000000);
  sel.limit = limit > 0 ? limit + 1 : 0;  // one more tells whether the list was cut
  // Only the parameters shown are read: the columns asked for, else those that differ.
  std::vector<std::string> params = a.list("params");
  sel.params = params;
  auto rows = as_http_errors([&] { return query::select_runs(*store, sel); });
  const bool more = limit > 0 && static_cast<int64_t>(rows.size()) > limit;
  if (more) rows.resize(static_cast<size_t>(limit));
  if (params.empty() && !rows.empty()) {
    params = query::differing_params(*store, rows);
    if (params.size() > 8) params.resize(8);
    query::load_params(*store, rows, params);
  }
  std::vector<std::string> metrics = a.list("metrics");
  if (metrics.empty()) metrics = query::metric_columns(rows);
  const std::set<int64_t> stale = stale_runs(*store);

  json out_rows = json::array();
  for (const auto& r : rows) {
    json pj = json::object();
    for (const auto& k : params) {
      auto it = r.params.find(k);
      if (it != r.params.end()) pj[k] = it->second;
    }
    json mj = json::object();
    for (const auto& k : metrics) {
      auto it = r.metrics.find(k);
      if (it != r.metrics.end()) mj[k] = query::number_json(it->second);
    }
    out_rows.push_back({{"id", r.id},
                        {"name", r.name},
                        {"status", r.status},
                        {"stale", stale.count(r.id) > 0},
                        {"reason", r.reason},
                        {"started_at", r.started_at},
                        {"duration_s", query::number_json(query::duration_seconds(r))},
                        {"steps", r.steps},
                        {"seed", r.seed},
                        {"sweep", r.sweep},
                        {"params", pj},
                        {"metrics", mj}});
  }
  json short_names = json::object();
  for (const auto& k : params) short_names[k] = query::short_param(k);
  return {{"db", db_.string()},
          {"total", total},
          {"shown", out_rows.size()},
          {"more", more},
          {"columns", {{"params", params}, {"metrics", metrics}, {"short", short_names}}},
          {"facets", facets},
          {"runs", out_rows}};
}

json Api::run(const std::string& run, const Params& p) const {
  const Args a(p, {});
  auto store = open();
  const query::RunRow r = find_row(*store, run);
  json j = query::run_details_json(*store, r);
  j["duration_s"] = query::number_json(query::duration_seconds(r));
  store->query("SELECT heartbeat_at, (julianday('now') - julianday(heartbeat_at)) * 86400.0 FROM runs WHERE id = ?",
               {r.id}, [&](const store::Row& q) {
                 j["heartbeat_at"] = q.text(0);
                 j["heartbeat_age_s"] = query::number_json(q.real(1));
                 j["stale"] = r.status == "RUNNING" && q.real(1) > kStaleSeconds;
               });
  return j;
}

json Api::run_metrics(const std::string& run, const Params& p) const {
  const Args a(p, {"key", "points"});
  const auto points = static_cast<size_t>(a.integer("points", 2000, 10, 1000000));
  auto store = open();
  const query::RunRow r = find_row(*store, run);
  std::vector<std::string> keys = a.list("key");
  if (keys.empty()) {
    store->query("SELECT key FROM metric_summary WHERE run_id = ? ORDER BY key", {r.id},
                 [&](const store::Row& q) { keys.push_back(q.text(0)); });
  }
  const auto curves = read_curves(*store,
                                  "SELECT key, step, value FROM metrics WHERE run_id = ? AND key IN (SELECT value FROM "
                                  "json_each(?)) ORDER BY key, step, rowid",
                                  {r.id, json(keys).dump()});
  json metrics = json::object();
  for (const auto& k : keys) {
    auto it = curves.find(k);
    metrics[k] = curve_json(it == curves.end() ? Curve{} : it->second, points);
  }
  return {{"run", r.id}, {"status", r.status}, {"steps", r.steps}, {"metrics", metrics}};
}

json Api::curves(const Params& p) const {
  const Args a(p, {"runs", "key", "points"});
  const auto runs = a.list("runs");
  const std::string key = a.text("key");
  if (runs.empty()) throw bad_request("curves needs runs=ID,ID,...");
  if (runs.size() > 1000) throw bad_request("curves takes at most 1000 runs");
  if (key.empty()) throw bad_request("curves needs key=METRIC (e.g. train/loss)");
  // The page draws every curve: fewer points each when there are many (about 10,000 in all; a
  // hundred overlaid curves cannot show more detail than 100 points each anyway).
  const int64_t fallback = std::clamp<int64_t>(10000 / static_cast<int64_t>(runs.size()), 100, 2000);
  const auto points = static_cast<size_t>(a.integer("points", fallback, 10, 1000000));
  auto store = open();
  query::RunSelection sel;
  for (const auto& r : runs) sel.runs.push_back(std::to_string(run_id_of(*store, r)));
  sel.params = std::vector<std::string>();
  const auto rows = query::select_runs(*store, sel);
  std::vector<int64_t> ids;
  for (const auto& r : rows) ids.push_back(r.id);
  // Many long runs at a hundred points each: a run's curve is read at every k-th logged step
  // (k such that it reads about twice the points it shows), counted back from its last step,
  // then min/max buckets. Those steps are looked up in the metrics index one by one, so 100
  // runs of 2,500 points read about 21,000 entries instead of scanning 250,000. A run logged at
  // irregular steps, where the looked-up steps find too few points, is read whole; and a run's
  // own page (run_metrics) always reads every point.
  struct Extent {
    int64_t last = 0;
    int64_t count = 0;
  };
  std::map<int64_t, Extent> extent;
  store->query(
      "SELECT run_id, last_step, count FROM metric_summary WHERE run_id IN (SELECT value FROM json_each(?)) "
      "AND key = ?",
      {json(ids).dump(), key}, [&](const store::Row& q) {
        extent[q.int64(0)] = {q.int64(1), q.int64(2)};
      });
  std::map<std::string, Curve> curves;
  for (const auto& [run, e] : extent) {
    const int64_t spacing = std::max<int64_t>(1, e.last / std::max<int64_t>(1, e.count));
    const int64_t stride = std::max<int64_t>(1, e.last / (2 * static_cast<int64_t>(points))) / spacing * spacing;
    std::map<std::string, Curve> got;
    if (stride > spacing) {
      std::vector<int64_t> steps;
      for (int64_t s = e.last; s >= 0; s -= stride) steps.push_back(s);
      std::reverse(steps.begin(), steps.end());
      got =
          read_curves(*store,
                      "SELECT run_id, step, value FROM metrics WHERE run_id = ? AND key = ? AND step IN (SELECT value "
                      "FROM json_each(?)) ORDER BY step, rowid",
                      {run, key, json(steps).dump()});
      const auto it = got.find(std::to_string(run));
      if (it == got.end() || it->second.steps.size() * 2 < steps.size()) got.clear();
    }
    if (got.empty()) {
      got = read_curves(*store,
                        "SELECT run_id, step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, rowid",
                        {run, key});
    }
    curves.merge(got);
  }
  json series = json::array();
  for (const auto& r : rows) {
    auto it = curves.find(std::to_string(r.id));
    json s = curve_json(it == curves.end() ? Curve{} : it->second, points);
    s["run"] = r.id;
    s["name"] = r.name;
    s["status"] = r.status;
    series.push_back(std::move(s));
  }
  return {{"key", key}, {"series", series}};
}

json Api::compare(const Params& p) const {
  const Args a(p, {"runs", "sweep", "where", "group_by", "metric", "baseline", "any_status"});
  query::RunSelection sel;
  sel.runs = a.list("runs");
  sel.where = a.text("where");
  const std::string sweep = a.text("sweep");
  if (sel.runs.empty() && sweep.empty() && sel.where.empty()) {
    throw bad_request("compare needs runs=ID,ID,..., sweep=SWEEP or where=EXPR");
  }
  const bool any_status = a.flag("any_status");
  auto store = open();
  for (const auto& r : sel.runs) run_id_of(*store, r);
  if (!sweep.empty()) {
    if (!store->find_sweep(sweep)) throw HttpError(404, fmt::format("no sweep '{}'", sweep));
    sel.sweep = sweep;
  }
  const auto rows = as_http_errors([&] { return query::select_compared(*store, sel, any_status); });
  query::CompareOptions co;
  co.group_by = a.list("group_by");
  co.metrics = a.list("metric");
  co.baseline = a.text("baseline");
  const query::Comparison c = as_http_errors([&] { return query::compare_runs(rows, co); });
  json j = query::comparison_json(c);
  j["text"] = query::format_comparison(c);
  j["names"] = json::object();
  for (const auto& r : rows) j["names"][std::to_string(r.id)] = r.name;
  j["params"] = query::differing_params(rows);
  j["any_status"] = any_status;
  return j;
}

json Api::sweeps(const Params& p) const {
  const Args a(p, {});
  auto store = open();
  const auto progress = sweep_progress(*store, std::nullopt);
  json out = json::array();
  store->query("SELECT id, name, status, created_at FROM sweeps ORDER BY id DESC", {}, [&](const store::Row& q) {
    out.push_back({{"id", q.int64(0)},
                   {"name", q.text(1)},
                   {"status", q.text(2)},
                   {"created_at", q.text(3)},
                   {"progress", progress.at(q.int64(0))}});
  });
  return {{"sweeps", out}};
}

json Api::sweep(const std::string& name, const Params& p) const {
  const Args a(p, {"metric", "mode"});
  auto store = open();
  const auto record = store->find_sweep(name);
  if (!record) throw HttpError(404, fmt::format("no sweep '{}'", name));
  const json spec = json::parse(record->spec_json, nullptr, false);
  const sweep::PruningSpec pruning = spec.is_object() ? sweep::pruning_from_json(spec) : sweep::PruningSpec{};
  query::RunSelection sel;
  sel.sweep = record->name;
  sel.sort = "id";
  const auto rows = query::select_runs(*store, sel);

  // The metric: asked for, else the sweep's objective, else the first evaluation result, else
  // the pruning metric.
  const query::Objective objective = query::objective_from_spec_json(spec);
  std::string metric = a.text("metric");
  if (metric.empty() && objective.source == "objective") metric = objective.metric;
  if (metric.empty()) {
    for (const auto& m : query::metric_columns(rows)) {
      if (m != "train/loss") {
        metric = m;
        break;
      }
    }
  }
  if (metric.empty()) metric = pruning.metric;
  std::string mode = a.text("mode");
  if (mode.empty()) {
    const bool from_spec = metric == objective.metric || metric == pruning.metric;
    const bool spec_max = metric == objective.metric ? objective.maximize : pruning.maximize;
    mode = from_spec ? (spec_max ? "max" : "min") : (lower_is_better(metric) ? "min" : "max");
  } else if (mode != "min" && mode != "max") {
    throw bad_request(fmt::format("parameter 'mode' must be min or max, got '{}'", mode));
  }
  const bool maximize = mode == "max";

  // Best so far, in trial order, over runs that finished or are still going (a pruned or failed
  // run's latest value is not a result).
  json best = nullptr;
  json history = json::array();
  double best_value = std::nan("");
  std::vector<query::RunRow> completed;
  for (const auto& r : rows) {
    if (r.status == "COMPLETED") completed.push_back(r);
    if (r.status != "COMPLETED" && r.status != "RUNNING") continue;
    auto it = r.metrics.find(metric);
    if (it == r.metrics.end() || !std::isfinite(it->second)) continue;
    const double v = it->second;
    if (std::isnan(best_value) || (maximize ? v > best_value : v < best_value)) {
      best_value = v;
      best = {{"run", r.id}, {"name", r.name}, {"value", v}, {"status", r.status}, {"params", r.params}};
    }
    history.push_back({{"run", r.id}, {"value", v}, {"best", best_value}});
  }
  if (best.is_object()) {
    json differing = json::object();
    for (const auto& k : query::differing_params(rows)) {
      if (best["params"].contains(k)) differing[k] = best["params"][k];
    }
    best["params"] = differing;
  }

  std::vector<std::string> swept;
  if (spec.is_object() && spec.contains("params") && spec["params"].is_array()) {
    for (const auto& sp : spec["params"]) {
      if (sp.is_object() && sp.contains("key") && sp["key"].is_string()) swept.push_back(sp["key"]);
    }
  }
  if (swept.empty()) swept = query::differing_params(rows);
  json effects = json::array();
  for (const auto& key : swept) {
    const query::ParamEffect e = query::param_effect(completed, key, metric);
    json values = json::array();
    for (const auto& v : e.values) {
      const auto& s = v.summary;
      values.push_back({{"value", v.value},
                        {"x", v.x},
                        {"n", s.n},
                        {"mean", query::number_json(s.mean)},
                        {"sd", query::number_json(s.sd)},
                        {"ci95", {query::number_json(s.ci_low), query::number_json(s.ci_high)}},
                        {"values", values_json(v.ys)}});
    }
    json points = json::array();
    for (const auto& [x, y] : e.points) points.push_back({x, y});
    effects.push_back({{"param", key}, {"numeric", e.numeric}, {"values", values}, {"points", points}});
  }

  // Which parameters decide the best completed trials, by the metric and mode the page shows
  // (the same ranking as `jepa compare --sweep NAME --importance`).
  std::vector<query::ParamSpace> space = query::space_from_spec_json(spec);
  const bool inferred = space.empty();
  if (inferred) space = query::infer_space(completed);
  const bool best_values = objective.best && metric == objective.metric;
  if (best_values) query::use_best_values(*store, completed, metric, maximize);
  json importance = query::importance_json(query::ped_anova(completed, space, metric, maximize));
  importance["space"] = inferred ? "inferred" : "spec";
  importance["value"] = best_values ? "best" : "last";

  json runs = json::array();
  json pruned = json::array();
  for (const auto& r : rows) {
    auto it = r.metrics.find(metric);
    json point = json::object();
    for (const auto& k : swept) {
      auto pv = r.params.find(k);
      if (pv != r.params.end()) point[k] = pv->second;
    }
    runs.push_back({{"id", r.id},
                    {"name", r.name},
                    {"status", r.status},
                    {"reason", r.reason},
                    {"steps", r.steps},
                    {"seed", r.seed},
                    {"value", it == r.metrics.end() ? json() : query::number_json(it->second)},
                    {"point", point}});
    if (r.status == "PRUNED") {
      pruned.push_back({{"run", r.id}, {"name", r.name}, {"steps", r.steps}, {"reason", r.reason}});
    }
  }
  json trials = json::array();
  for (const auto& t : store->sweep_trials(record->id)) {
    trials.push_back({{"index", t.index},
                      {"overrides", json::parse(t.overrides_json, nullptr, false)},
                      {"run", t.run_id ? json(*t.run_id) : json()},
                      {"status", t.status ? json(store::status_name(*t.status)) : json()},
                      {"reason", t.reason}});
  }
  std::set<std::string> metric_keys;
  for (const auto& r : rows) {
    for (const auto& [k, v] : r.metrics) metric_keys.insert(k);
  }
  return {
      {"sweep",
       {{"id", record->id}, {"name", record->name}, {"status", record->status}, {"created_at", record->created_at}}},
      {"spec", spec.is_discarded() ? json() : spec},
      {"pruning", {{"rule", pruning.rule}, {"metric", pruning.metric}, {"mode", pruning.maximize ? "max" : "min"}}},
      {"progress", sweep_progress(*store, record->id).at(record->id)},
      {"metric", metric},
      {"mode", mode},
      {"metrics", metric_keys},
      {"best", best},
      {"best_so_far", history},
      {"params", swept},
      {"effects", effects},
      {"importance", importance},
      {"runs", runs},
      {"pruned", pruned},
      {"trials", trials}};
}

namespace {

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// The engine's "error: ..." lines, for the page.
std::string engine_message(const EngineResult& r) {
  std::string m = r.err;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  const auto last = m.rfind("\nerror: ");
  if (last != std::string::npos) m = m.substr(last + 1);
  if (m.rfind("error: ", 0) == 0) m = m.substr(7);
  return m.empty() ? fmt::format("exit status {}", r.code) : m;
}

}  // namespace

json Api::masking(const Params& p) {
  const Args a(p, {});
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (!masking_.is_null()) return masking_;
  const EngineResult r = engine_.run({"plugins", "--json"}, std::chrono::seconds(60));
  if (r.code != 0) {
    throw HttpError(500, fmt::format("{} plugins failed: {}", engine_.executable().string(), engine_message(r)));
  }
  const json all = json::parse(r.out, nullptr, false);
  if (all.is_discarded()) throw HttpError(500, "jepa-engine plugins printed no JSON");
  json strategies = json::array();
  for (const auto& plugin : all.value("plugins", json::array())) {
    for (const auto& c : plugin.value("components", json::array())) {
      if (c.value("kind", "") != "masking") continue;
      json s = c;
      s["plugin"] = plugin.value("name", "");
      strategies.push_back(std::move(s));
    }
  }
  masking_ = {{"strategies", strategies}};
  return masking_;
}

json Api::masks(const Params& p) {
  const Args a(p, {"strategy", "grid", "batch", "seed", "step", "set"});
  const std::string strategy = a.text("strategy");
  static const std::regex kId("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
  static const std::regex kGrid("[0-9]{1,4}(x[0-9]{1,4})?");
  static const std::regex kSet("[A-Za-z_][A-Za-z0-9_.]{0,63}=[^\\x00-\\x1f]{0,256}");
  if (!std::regex_match(strategy, kId)) {
    throw bad_request(strategy.empty() ? "masks needs strategy=ID (see /api/masking)"
                                       : fmt::format("'{}' is not a component id", strategy));
  }
  const std::string grid = a.text("grid", "14");
  if (!std::regex_match(grid, kGrid)) throw bad_request(fmt::format("grid must be N or HxW, got '{}'", grid));
  std::vector<std::string> args{"masks",
                                "--strategy",
                                strategy,
                                "--grid",
                                grid,
                                "--batch",
                                std::to_string(a.integer("batch", 8, 1, 64)),
                                "--seed",
                                std::to_string(a.integer("seed", 0, 0, int64_t{1} << 53)),
                                "--step",
                                std::to_string(a.integer("step", 0, 0, int64_t{1} << 40)),
                                "--json"};
  const auto sets = a.all("set");
  if (sets.size() > 32) throw bad_request("at most 32 set=KEY=VALUE parameters");
  for (const auto& s : sets) {
    if (!std::regex_match(s, kSet)) throw bad_request(fmt::format("set must be KEY=VALUE, got '{}'", s));
    args.insert(args.end(), {"--set", s});
  }
  std::string key;
  for (const auto& s : args) key += s + '\x1f';
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = masks_cache_.find(key);
    if (it != masks_cache_.end()) return it->second;
  }
  const EngineResult r = engine_.run(args, std::chrono::seconds(60), "masks.png");
  if (r.timed_out) throw HttpError(500, "jepa-engine masks took over 60 s");
  if (r.code == 2) throw bad_request(engine_message(r));
  if (r.code != 0) throw HttpError(500, fmt::format("jepa-engine masks failed: {}", engine_message(r)));
  // The JSON is the last line of standard output.
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const auto nl = out.rfind('\n');
  json masks = json::parse(nl == std::string::npos ? out : out.substr(nl + 1), nullptr, false);
  if (masks.is_discarded()) throw HttpError(500, "jepa-engine masks printed no JSON");
  masks.erase("png");  // the private file's path, gone now
  json j{{"masks", masks}, {"png", "data:image/png;base64," + base64(r.file)}};
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (masks_cache_.size() >= 64) masks_cache_.clear();
  masks_cache_[key] = j;
  return j;
}

}  // namespace jepa::ui
