// `jepa runs`, `jepa show`, `jepa compare`, `jepa plot` and the tabular side of `jepa export`:
// reading the results store. None of these load plugins or touch LibTorch.
#include "cli/commands.hpp"
#include "query/compare.hpp"
#include "query/filter.hpp"
#include "query/importance.hpp"
#include "query/param_effect.hpp"
#include "query/run_json.hpp"
#include "query/runs.hpp"
#include "query/table.hpp"
#include "report/plot.hpp"
#include "store/store.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>

namespace jepa::cli {
namespace {

using query::differing_params;
using query::metric_columns;
using query::run_json;
using query::short_param;

constexpr const char* kDefaultDb = "results/jepa.db";

// Reading commands must not create a database where there was none.
std::unique_ptr<store::Store> open_existing(const std::string& db) {
  if (!std::filesystem::exists(db)) {
    throw UsageError(fmt::format("no results database at {} (run an experiment first, or pass --db PATH)", db));
  }
  return std::make_unique<store::Store>(db);
}

// "a,b" and repeated options both give a list.
std::vector<std::string> split_list(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& s : in) {
    size_t start = 0;
    while (start <= s.size()) {
      const size_t comma = s.find(',', start);
      std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!item.empty()) out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

// A bad filter or an unknown run or sweep is the user's mistake: exit status 2.
template <class F>
auto as_usage_errors(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const query::FilterError& e) {
    throw UsageError(e.what());
  } catch (const store::StoreError& e) {
    throw UsageError(e.what());
  }
}

std::vector<query::RunRow> select(const store::Store& store, const query::RunSelection& sel) {
  return as_usage_errors([&] { return query::select_runs(store, sel); });
}

std::string cell(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "-" : it->second;
}

std::string metric_cell(const std::map<std::string, double>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "-" : (std::isnan(it->second) ? "nan" : query::format_number(it->second));
}

std::string truncate(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

void add_selection_options(CLI::App* sub, query::RunSelection& sel, std::string& db) {
  sub->add_option("--sweep", sel.sweep, "Only the runs of this sweep (name or id)")->type_name("SWEEP");
  sub->add_option("--where", sel.where,
                  "Filter, e.g. 'linear_probe/top1 > 70 and optimization.lr <= 1e-3 and status = completed' "
                  "(metrics hold a '/', parameters a '.'; see `jepa runs --help`)")
      ->type_name("EXPR");
  sub->add_option("--db", db, "Results database")->capture_default_str();
}

// ---- jepa runs --------------------------------------------------------------------------------

struct RunsOptions {
  query::RunSelection sel;
  std::string db = kDefaultDb;
  std::vector<std::string> params;
  std::vector<std::string> metrics;
  bool json = false;
};

// Runs write a heartbeat every 10 s from a thread of their own, through evaluations too: one
// that has been silent for a minute is dead (its machine or process went away), not busy.
constexpr double kStaleSeconds = 60.0;

int run_runs(const RunsOptions& o) {
  auto store = open_existing(o.db);
  store->mark_stale_runs(kStaleSeconds);
  query::RunSelection sel = o.sel;
  const int64_t shown = sel.limit;
  if (shown > 0) sel.limit = shown + 1;  // one more tells whether the list was cut
  auto rows = select(*store, sel);
  const bool more = shown > 0 && static_cast<int64_t>(rows.size()) > shown;
  if (more) rows.resize(static_cast<size_t>(shown));

  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : rows) out.push_back(run_json(r));
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  if (rows.empty()) {
    fmt::print("no runs match\n");
    return 0;
  }
  std::vector<std::string> params = o.params.empty() ? differing_params(rows) : split_list(o.params);
  if (o.params.empty() && params.size() > 6) params.resize(6);
  const std::vector<std::string> metrics = o.metrics.empty() ? metric_columns(rows) : split_list(o.metrics);
  const bool any_sweep = std::any_of(rows.begin(), rows.end(), [](const auto& r) { return !r.sweep.empty(); });
  const bool any_reason = std::any_of(rows.begin(), rows.end(), [](const auto& r) { return !r.reason.empty(); });
  const bool any_job = std::any_of(rows.begin(), rows.end(), [](const auto& r) { return !r.job_id.empty(); });

  std::vector<std::string> header{"id", "name", "status", "steps", "time"};
  if (any_sweep) header.push_back("sweep");
  if (any_job) header.push_back("slurm job");
  for (const auto& p : params) header.push_back(short_param(p));
  header.insert(header.end(), metrics.begin(), metrics.end());
  if (any_reason) header.push_back("reason");
  query::TextTable t(header);
  for (const auto& r : rows) {
    std::vector<std::string> row{std::to_string(r.id), r.name, r.status, std::to_string(r.steps),
                                 query::format_duration(query::duration_seconds(r))};
    if (any_sweep) row.push_back(r.sweep.empty() ? "-" : r.sweep);
    if (any_job) row.push_back(r.job_id.empty() ? "-" : r.job_id + (r.job_state.empty() ? "" : " " + r.job_state));
    for (const auto& p : params) row.push_back(cell(r.params, p));
    for (const auto& m : metrics) row.push_back(metric_cell(r.metrics, m));
    if (any_reason) row.push_back(truncate(r.reason, 70));
    t.add_row(row);
  }
  fmt::print("{}", t.render());
  if (more) fmt::print("(first {} shown; --limit 0 lists every match)\n", shown);
  return 0;
}

// ---- jepa show --------------------------------------------------------------------------------

struct ShowOptions {
  std::string run;
  std::string db = kDefaultDb;
  bool json = false;
};

int run_show(const ShowOptions& o) {
  auto store = open_existing(o.db);
  store->mark_stale_runs(kStaleSeconds);
  query::RunSelection sel;
  sel.runs = {o.run};
  const auto rows = select(*store, sel);
  const query::RunRow& r = rows.at(0);
  const nlohmann::json j = query::run_details_json(*store, r);
  if (o.json) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  auto text = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  auto number = [](const nlohmann::json& v) {
    return query::format_number(v.is_null() ? std::nan("") : v.get<double>(), 6);
  };

  fmt::print("run {}  {}  {}\n", r.id, r.name, r.status);
  if (!r.reason.empty()) fmt::print("  reason       {}\n", r.reason);
  fmt::print("  started      {}\n  ended        {}\n  duration     {}\n  steps        {}\n  seed         {}\n",
             r.started_at, r.ended_at.empty() ? "-" : r.ended_at, query::format_duration(query::duration_seconds(r)),
             r.steps, r.seed);
  if (!r.sweep.empty()) fmt::print("  sweep        {}\n", r.sweep);
  if (!r.job_id.empty()) fmt::print("  slurm job    {} ({})\n", r.job_id, r.job_state.empty() ? "?" : r.job_state);
  if (!j["resumed_from"].is_null()) fmt::print("  resumed from {}\n", j["resumed_from"].get<int64_t>());
  const std::string config_path = j["config_path"];
  fmt::print("  config file  {}\n", config_path.empty() ? "-" : config_path);

  fmt::print("\nmetrics (latest value, range over the run)\n");
  query::TextTable mt({"  key", "step", "last", "min", "max", "points"});
  for (const auto& s : j["metric_summary"]) {
    mt.add_row({"  " + text(s["key"]), text(s["last_step"]), number(s["last"]), number(s["min"]), number(s["max"]),
                text(s["count"])});
  }
  fmt::print("{}", mt.size() == 0 ? "  (none)\n" : mt.render());

  fmt::print("\nevaluations\n");
  query::TextTable et({"  evaluator", "metric", "value", "step"});
  for (const auto& e : j["evaluations"]) {
    et.add_row({"  " + text(e["evaluator"]), text(e["metric"]), number(e["value"]), text(e["step"])});
  }
  fmt::print("{}", et.size() == 0 ? "  (none)\n" : et.render());

  fmt::print("\nartifacts\n");
  query::TextTable at({"  kind", "step", "bytes", "path"});
  for (const auto& a : j["artifacts"]) {
    at.add_row({"  " + text(a["kind"]), text(a["step"]), text(a["bytes"]), text(a["path"])});
  }
  fmt::print("{}", at.size() == 0 ? "  (none)\n" : at.render());

  fmt::print("\nplugins\n");
  query::TextTable pt({"  role", "component", "plugin", "sha256", "path"});
  for (const auto& p : j["plugins"]) {
    pt.add_row({"  " + text(p["role"]), fmt::format("{} v{}", text(p["component"]), text(p["component_version"])),
                fmt::format("{} {}", text(p["plugin"]), text(p["plugin_version"])), text(p["sha256"]),
                text(p["path"])});
  }
  fmt::print("{}", pt.size() == 0 ? "  (none)\n" : pt.render());

  fmt::print("\nenvironment\n");
  query::TextTable vt({"  key", "value"});
  for (const auto& [k, v] : j["environment"].items()) vt.add_row({"  " + k, text(v)});
  fmt::print("{}", vt.size() == 0 ? "  (none)\n" : vt.render());

  fmt::print("\nparameters (resolved config)\n");
  query::TextTable ct({"  key", "value"});
  for (const auto& [k, v] : r.params) ct.add_row({"  " + k, v});
  fmt::print("{}", r.params.empty() ? "  (none)\n" : ct.render());
  return 0;
}

// ---- jepa compare -----------------------------------------------------------------------------

struct CompareCliOptions {
  std::vector<std::string> runs;
  query::RunSelection sel;
  std::string db = kDefaultDb;
  std::vector<std::string> group_by;
  std::vector<std::string> metrics;
  std::string baseline;
  bool any_status = false;
  bool json = false;
  bool importance = false;
  std::string mode;  // min | max; "" = the sweep's
};

// --importance: which parameters mattered for reaching the best runs (PED-ANOVA), over the runs
// the comparison would take. The sweep's spec gives the space and the objective; a selection
// without one (or a sweep made by hand) has its space inferred and must name the metric.
int run_importance(const CompareCliOptions& o) {
  if (!o.group_by.empty() || !o.baseline.empty()) {
    throw UsageError("--importance ranks parameters and does not group runs: drop --group-by and --baseline");
  }
  const auto metrics = split_list(o.metrics);
  if (metrics.size() > 1) throw UsageError("--importance takes one --metric");
  auto store = open_existing(o.db);
  query::RunSelection sel = o.sel;
  sel.runs = o.runs;
  auto rows = as_usage_errors([&] { return query::select_compared(*store, sel, o.any_status); });
  nlohmann::json spec;
  if (sel.sweep) {
    if (const auto sweep = store->find_sweep(*sel.sweep))
      spec = nlohmann::json::parse(sweep->spec_json, nullptr, false);
  }
  const query::Objective objective = query::objective_from_spec_json(spec);
  const std::string metric = metrics.empty() ? objective.metric : metrics.front();
  if (metric.empty()) {
    throw UsageError(sel.sweep ? "--importance: the sweep records no objective or pruning metric; pass --metric KEY"
                               : "--importance needs --metric KEY (and --mode) without --sweep");
  }
  // A metric other than the sweep's objective has no recorded direction, and guessing it would
  // rank the parameters that lead to the worst runs.
  if (o.mode.empty() && metric != objective.metric) {
    throw UsageError(
        fmt::format("--importance: is a higher or a lower {} better? Pass --mode max or --mode min", metric));
  }
  const bool maximize = o.mode.empty() ? objective.maximize : o.mode == "max";
  const bool best = objective.best && metric == objective.metric;
  if (best) query::use_best_values(*store, rows, metric, maximize);
  std::vector<query::ParamSpace> space = query::space_from_spec_json(spec);
  const bool inferred = space.empty();
  if (inferred) space = query::infer_space(rows);
  const query::Importance imp = query::ped_anova(rows, space, metric, maximize);

  const std::string metric_from = metric != objective.metric        ? "--metric"
                                  : objective.source == "objective" ? "the sweep's objective"
                                                                    : "the sweep's pruning metric";
  const std::string space_from = inferred ? "inferred from the runs" : "from the sweep's spec";
  if (o.json) {
    auto j = query::importance_json(imp);
    j["runs"] = rows.size();
    j["metric_from"] = metric_from;
    j["value"] = best ? "best" : "last";
    j["space"] = inferred ? "inferred" : "spec";
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{} runs; {} ({}, {} value of each run); {} parameters {}\n", rows.size(), metric, metric_from,
             best ? "best" : "last", space.size(), space_from);
  if (space.empty()) {
    fmt::print("no parameter varies across these runs\n");
  } else {
    fmt::print("{}", query::format_importance(imp));
  }
  if (rows.empty() && !o.any_status) fmt::print("(only COMPLETED runs are compared; --any-status takes all)\n");
  return 0;
}

int run_compare(const CompareCliOptions& o) {
  if (o.runs.empty() && !o.sel.sweep && o.sel.where.empty()) {
    throw UsageError("jepa compare needs runs (RUN...), --sweep S or --where EXPR");
  }
  if (o.importance) return run_importance(o);
  if (!o.mode.empty()) throw UsageError("--mode goes with --importance");
  auto store = open_existing(o.db);
  query::RunSelection sel = o.sel;
  sel.runs = o.runs;
  const auto rows = as_usage_errors([&] { return query::select_compared(*store, sel, o.any_status); });
  query::CompareOptions co;
  co.group_by = split_list(o.group_by);
  co.metrics = split_list(o.metrics);
  co.baseline = o.baseline;
  query::Comparison c;
  try {
    c = query::compare_runs(rows, co);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (o.json) {
    fmt::print("{}\n", query::comparison_json(c).dump(2));
  } else {
    fmt::print("{}", query::format_comparison(c));
    if (rows.empty() && !o.any_status) fmt::print("(only COMPLETED runs are compared; --any-status takes all)\n");
  }
  return 0;
}

// ---- jepa plot --------------------------------------------------------------------------------

struct PlotOptions {
  std::vector<std::string> runs;
  query::RunSelection sel;
  std::string db = kDefaultDb;
  std::string metric = "train/loss";
  std::string param;
  std::string output;
  bool log_y = false;
};

std::string file_safe(std::string s) {
  for (auto& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
  }
  return s;
}

int run_plot(const PlotOptions& o) {
  if (o.runs.empty() && !o.sel.sweep && o.sel.where.empty()) {
    throw UsageError("jepa plot needs runs (RUN...), --sweep S or --where EXPR");
  }
  auto store = open_existing(o.db);
  query::RunSelection sel = o.sel;
  sel.runs = o.runs;
  if (sel.sort.empty() && o.runs.empty()) sel.sort = "id";
  const auto rows = select(*store, sel);
  if (rows.empty()) throw UsageError("no runs match");

  report::PlotSpec spec;
  spec.log_y = o.log_y;
  std::string output = o.output;
  if (o.param.empty()) {
    // Training curves, one line per run, labelled by what differs between the runs.
    const auto differ = differing_params(rows);
    spec.title = o.metric;
    spec.x_label = "step";
    spec.y_label = o.metric;
    for (const auto& r : rows) {
      report::PlotSeries s;
      s.label = fmt::format("{} {}", r.id, r.name);
      for (size_t i = 0; i < differ.size() && i < 3; ++i) {
        s.label += fmt::format(" {}={}", short_param(differ[i]), cell(r.params, differ[i]));
      }
      for (const auto& p : store->metrics(r.id, o.metric)) {
        s.x.push_back(static_cast<double>(p.step));
        s.y.push_back(p.value);
      }
      if (!s.x.empty()) spec.series.push_back(std::move(s));
    }
    if (spec.series.empty()) {
      throw UsageError(
          fmt::format("none of the {} selected runs has metric '{}' (see `jepa show RUN`)", rows.size(), o.metric));
    }
    if (output.empty()) output = fmt::format("results/plots/{}.png", file_safe(o.metric));
  } else {
    // Parameter against the run's final metric: every run a point, each value's mean with a 95% CI.
    spec.title = fmt::format("{} vs {}", o.metric, o.param);
    spec.x_label = o.param;
    spec.y_label = o.metric;
    const query::ParamEffect effect = query::param_effect(rows, o.param, o.metric);
    if (effect.points.empty()) {
      throw UsageError(fmt::format("no selected run has both parameter '{}' and metric '{}'", o.param, o.metric));
    }
    if (effect.numeric) {
      const double lo = effect.values.front().x;
      const double hi = effect.values.back().x;
      spec.log_x = lo > 0 && hi / lo >= 100;
    } else {
      for (const auto& v : effect.values) spec.x_categories.push_back(v.value);
    }
    report::PlotSeries runs_series;
    runs_series.label = "runs";
    runs_series.style = report::PlotSeries::Style::points;
    for (const auto& [x, y] : effect.points) {
      runs_series.x.push_back(x);
      runs_series.y.push_back(y);
    }
    report::PlotSeries means;
    means.label = "mean, 95% CI";
    means.style = report::PlotSeries::Style::error_bars;
    for (const auto& v : effect.values) {
      const auto& s = v.summary;
      means.x.push_back(v.x);
      means.y.push_back(s.mean);
      means.y_low.push_back(s.n >= 2 ? s.ci_low : s.mean);
      means.y_high.push_back(s.n >= 2 ? s.ci_high : s.mean);
    }
    spec.series = {runs_series, means};
    if (output.empty()) output = fmt::format("results/plots/{}-vs-{}.png", file_safe(o.metric), file_safe(o.param));
  }
  try {
    report::render_plot(spec, output);
  } catch (const report::PlotError& e) {
    throw UsageError(e.what());
  }
  fmt::print("wrote {}\n", output);
  return 0;
}

}  // namespace

// ---- jepa export --format csv|json --------------------------------------------------------------

int run_export_table(const ExportTableOptions& o) {
  auto store = open_existing(o.db);
  query::RunSelection sel;
  sel.runs = o.runs;
  sel.sweep = o.sweep;
  sel.where = o.where;
  sel.sort = "id";
  const auto rows = select(*store, sel);
  std::ofstream file;
  if (!o.output.empty() && o.output != "-") {
    if (std::filesystem::path(o.output).has_parent_path()) {
      std::filesystem::create_directories(std::filesystem::path(o.output).parent_path());
    }
    file.open(o.output, std::ios::binary);
    if (!file) throw UsageError(fmt::format("cannot write {}", o.output));
  }
  std::ostream& out = file.is_open() ? static_cast<std::ostream&>(file) : std::cout;
  const bool csv = o.format == "csv";

  if (o.history) {
    // Long format: one row per metric point, the shape pandas and spreadsheets pivot from.
    const auto keys = split_list(o.metrics);
    if (csv) out << query::csv_row({"run_id", "run_name", "key", "step", "value", "time"});
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rows) {
      std::vector<std::string> wanted = keys;
      if (wanted.empty()) {
        for (const auto& [k, v] : r.metrics) wanted.push_back(k);
      }
      for (const auto& k : wanted) {
        for (const auto& p : store->metrics(r.id, k)) {
          if (csv) {
            out << query::csv_row({std::to_string(r.id), r.name, k, std::to_string(p.step),
                                   query::exact_number(p.value), query::exact_number(p.time)});
          } else {
            arr.push_back({{"run_id", r.id},
                           {"run_name", r.name},
                           {"key", k},
                           {"step", p.step},
                           {"value", query::number_json(p.value)},
                           {"time", p.time}});
          }
        }
      }
    }
    if (!csv) out << arr.dump(1) << '\n';
  } else if (csv) {
    // Wide format: a row per run, a column per parameter and per latest metric.
    std::set<std::string> params;
    std::set<std::string> metrics;
    for (const auto& r : rows) {
      for (const auto& [k, v] : r.params) params.insert(k);
      for (const auto& [k, v] : r.metrics) metrics.insert(k);
    }
    std::vector<std::string> header{"id",       "name",  "status", "reason", "started_at",
                                    "ended_at", "steps", "seed",   "sweep"};
    for (const auto& p : params) header.push_back("param:" + p);
    for (const auto& m : metrics) header.push_back("metric:" + m);
    out << query::csv_row(header);
    for (const auto& r : rows) {
      std::vector<std::string> row{
          std::to_string(r.id),   r.name, r.status, r.reason, r.started_at, r.ended_at, std::to_string(r.steps),
          std::to_string(r.seed), r.sweep};
      for (const auto& p : params) {
        auto it = r.params.find(p);
        row.push_back(it == r.params.end() ? "" : it->second);
      }
      for (const auto& m : metrics) {
        auto it = r.metrics.find(m);
        row.push_back(it == r.metrics.end() ? "" : query::exact_number(it->second));
      }
      out << query::csv_row(row);
    }
  } else {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rows) arr.push_back(run_json(r));
    out << arr.dump(1) << '\n';
  }
  if (file.is_open()) {
    file.close();
    if (!file) throw UsageError(fmt::format("writing {} failed", o.output));
    fmt::print(stderr, "wrote {} ({} runs)\n", o.output, rows.size());
  }
  return 0;
}

Command add_runs_command(CLI::App& parent) {
  auto o = std::make_shared<RunsOptions>();
  auto* sub = parent.add_subcommand("runs", "List runs: status, the parameters that differ, latest metrics");
  add_selection_options(sub, o->sel, o->db);
  sub->add_option("--sort", o->sel.sort,
                  "Order by a field (metric, parameter or id/name/status/steps/started_at); a leading '-' "
                  "sorts descending. Default: newest first")
      ->type_name("FIELD");
  o->sel.limit = 50;
  sub->add_option("--limit", o->sel.limit, "Show at most N runs (0 = all)")->capture_default_str();
  sub->add_option("--params", o->params, "Parameter columns (comma-separated); default: those that differ")
      ->type_name("KEYS");
  sub->add_option("--metrics", o->metrics, "Metric columns (comma-separated); default: loss and evaluations")
      ->type_name("KEYS");
  sub->add_flag("--json", o->json, "Print JSON (every parameter and latest metric of each run)");
  sub->footer(
      "Filters (--where) compare fields with = != < <= > >= or like, joined by and / or / not and\n"
      "parentheses. Metrics (their key holds a '/') compare their latest value; parameters (a '.')\n"
      "compare as numbers when the value is a number, else as text; run columns are id, name,\n"
      "status, reason, seed, sweep, steps, started_at, ended_at. Quote text with '...' or \"...\".\n"
      "Examples:\n"
      "  jepa runs\n"
      "  jepa runs --sweep lr-grid --sort -linear_probe/top1 --limit 10\n"
      "  jepa runs --where \"status = failed or train/loss > 0.5\"\n"
      "  jepa runs --where \"masking.strategy = 'multiblock' and optimization.lr >= 5e-4\"");
  return {sub, [o] { return run_runs(*o); }};
}

Command add_show_command(CLI::App& parent) {
  auto o = std::make_shared<ShowOptions>();
  auto* sub = parent.add_subcommand(
      "show",
      "Everything about one run: status and reason, metrics, evaluations, artifacts, plugins, environment, "
      "resolved config");
  sub->add_option("run", o->run, "Run id or name (the newest run of that name)")->required()->type_name("RUN");
  sub->add_option("--db", o->db, "Results database")->capture_default_str();
  sub->add_flag("--json", o->json, "Print JSON");
  // Without its own footer a subcommand shows the main program's examples.
  sub->footer(
      "Examples:\n"
      "  jepa show 12\n"
      "  jepa show quickstart                      # the newest run named quickstart\n"
      "  jepa show 12 --json > run12.json");
  return {sub, [o] { return run_show(*o); }};
}

Command add_compare_command(CLI::App& parent) {
  auto o = std::make_shared<CompareCliOptions>();
  auto* sub = parent.add_subcommand(
      "compare", "Compare runs side by side: seeds grouped, mean/sd/95% CI per group, Welch's t-test");
  sub->add_option("runs", o->runs, "Run ids or names")->type_name("RUN...");
  add_selection_options(sub, o->sel, o->db);
  sub->add_option("--group-by", o->group_by,
                  "Group by these parameters (repeatable or comma-separated); default: every parameter except "
                  "seed, name, threads, workers, checkpoint.* and logging.*")
      ->type_name("PARAM");
  sub->add_option("--metric", o->metrics,
                  "Metrics to compare (repeatable or comma-separated); default: every metric that differs")
      ->type_name("KEY");
  sub->add_option("--baseline", o->baseline, "Group the t-tests compare against (A, B, ...); default A")
      ->type_name("GROUP");
  sub->add_flag("--any-status", o->any_status, "Include runs that did not complete");
  sub->add_flag("--json", o->json, "Print JSON (per-run values, statistics and tests)");
  sub->add_flag("--importance", o->importance,
                "Rank the swept parameters by how much they decide the best runs (PED-ANOVA) instead of grouping");
  sub->add_option("--mode", o->mode,
                  "With --importance: whether a higher (max) or lower (min) metric is better; default: the sweep's "
                  "objective mode")
      ->check(CLI::IsMember({"min", "max"}));
  sub->footer(
      "Metrics are each run's latest value. Runs that differ only by seed form a group; a group\n"
      "reports n, mean, sample sd and the Student-t 95% confidence interval of the mean, and a\n"
      "two-sided Welch t-test against the baseline group.\n"
      "--importance ranks the sweep's parameters by PED-ANOVA (Optuna's default evaluator): how\n"
      "differently each is distributed among the best 10% of the runs than among all of them, by\n"
      "the sweep's objective metric and mode unless --metric and --mode say otherwise. With fewer\n"
      "than 5 top runs (41 runs) it says the ranking is unreliable. docs/importance.md explains it.\n"
      "Examples:\n"
      "  jepa compare 3 4 5 6\n"
      "  jepa compare --sweep lr-grid --metric linear_probe/top1\n"
      "  jepa compare --sweep masks --group-by masking.params.npred --baseline B\n"
      "  jepa compare --sweep tpe-search --importance\n"
      "  jepa compare --sweep tpe-search --importance --metric knn/top1 --mode max");
  return {sub, [o] { return run_compare(*o); }};
}

Command add_plot_command(CLI::App& parent) {
  auto o = std::make_shared<PlotOptions>();
  auto* sub = parent.add_subcommand(
      "plot", "Draw training curves of runs, or a parameter against a final metric across a sweep (PNG or SVG)");
  sub->add_option("runs", o->runs, "Run ids or names")->type_name("RUN...");
  add_selection_options(sub, o->sel, o->db);
  sub->add_option("--metric", o->metric, "Metric key")->capture_default_str();
  sub->add_option("--param", o->param,
                  "Scatter: this parameter on x, each run's latest metric on y, with per-value mean and 95% CI")
      ->type_name("KEY");
  sub->add_option("-o,--output", o->output,
                  "Output .png or .svg (default: results/plots/<metric>.png or <metric>-vs-<param>.png)")
      ->type_name("FILE");
  sub->add_flag("--log-y", o->log_y, "Logarithmic y axis");
  sub->footer(
      "Examples:\n"
      "  jepa plot 3 4 5 --metric train/loss -o curves.png\n"
      "  jepa plot --sweep lr-grid --param optimization.lr --metric linear_probe/top1 -o lr.svg\n"
      "Needs gnuplot (scripts/install-deps.sh installs gnuplot-nox).");
  return {sub, [o] { return run_plot(*o); }};
}

}  // namespace jepa::cli
