#include "sweep/proposer.hpp"

#include "config/params.hpp"
#include "sweep/spec_json.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace jepa::sweep {

namespace {

// A trial's "key=value" overrides as a map, run.seed included.
std::map<std::string, std::string> overrides_of(const std::string& overrides_json) {
  std::map<std::string, std::string> out;
  for (const auto& o : nlohmann::json::parse(overrides_json))
    out.insert(config::split_assignment(o.get<std::string>()));
  return out;
}

int64_t seed_of(const std::map<std::string, std::string>& overrides) {
  const auto it = overrides.find("run.seed");
  return it == overrides.end() ? 0 : std::stoll(it->second);
}

// Its point: the overrides without the seed.
Point point_of(const std::string& overrides_json) {
  Point p = overrides_of(overrides_json);
  p.erase("run.seed");
  return p;
}

struct MetricValues {
  int64_t last_step = 0;
  double last = NAN, min = NAN, max = NAN;
};

std::map<int64_t, MetricValues> metric_of_runs(const store::Store& store, int64_t sweep_id, const std::string& key) {
  std::map<int64_t, MetricValues> out;
  store.query(
      "SELECT r.id, s.last_step, s.last_value, s.min_value, s.max_value FROM runs r JOIN metric_summary s ON "
      "s.run_id = r.id AND s.key = ? WHERE r.sweep_id = ?",
      {key, sweep_id}, [&](const store::Row& row) {
        out[row.int64(0)] = MetricValues{row.int64(1), row.real(2), row.real(3), row.real(4)};
      });
  return out;
}

std::set<std::string> param_keys(const SweepSpec& s) {
  std::set<std::string> keys;
  for (const auto& [key, d] : s.params) keys.insert(key);
  return keys;
}

}  // namespace

int64_t create_trial_run(store::Store& store, int64_t sweep_id, const std::string& sweep_name,
                         const std::string& experiment, const store::SweepTrialRecord& trial) {
  const auto params = overrides_of(trial.overrides_json);
  const int64_t run =
      store.create_run(fmt::format("{}-t{:03}", sweep_name, trial.index), "{}", experiment,
                       static_cast<uint64_t>(seed_of(params)), std::nullopt, store::TrialRef{sweep_id, trial.index});
  store.set_params(run, params);
  return run;
}

std::vector<Observation> sweep_history(const store::Store& store, int64_t sweep_id, const SweepSpec& spec,
                                       bool finished_only) {
  const ObjectiveSpec objective = effective_objective(spec);
  const auto objective_values = metric_of_runs(store, sweep_id, objective.metric);
  const auto pruning_values = metric_of_runs(store, sweep_id, spec.pruning.metric);
  std::vector<Observation> history;
  for (const auto& t : store.sweep_trials(sweep_id)) {
    Observation o;
    o.point = point_of(t.overrides_json);
    const bool pending = !t.status || *t.status == store::RunStatus::running || *t.status == store::RunStatus::killed;
    if (pending) {
      if (finished_only) continue;
      o.state = Observation::State::running;
    } else if (*t.status == store::RunStatus::completed) {
      const auto it = objective_values.find(*t.run_id);
      if (it == objective_values.end()) continue;
      const MetricValues& m = it->second;
      const double v = objective.value == "best" ? (objective.maximize ? m.max : m.min) : m.last;
      if (!std::isfinite(v)) continue;  // no objective: as good as failed
      o.value = objective.maximize ? -v : v;
    } else if (*t.status == store::RunStatus::pruned) {
      o.state = Observation::State::pruned;
      const auto it = pruning_values.find(*t.run_id);
      if (it == pruning_values.end()) {
        o.has_value = false;
      } else {
        o.step = it->second.last_step;
        o.value = spec.pruning.maximize ? -it->second.last : it->second.last;
      }
    } else {
      continue;  // FAILED
    }
    history.push_back(std::move(o));
  }
  return history;
}

void check_warm_start(const store::Store& store, const SweepSpec& spec) {
  for (const auto& name : spec.warm_start) {
    const auto earlier = store.find_sweep(name);
    if (!earlier) {
      throw SweepError(
          fmt::format("{}: [sweep] warm_start: no sweep '{}' in {}", spec.file.string(), name, store.path().string()));
    }
    const SweepSpec other = spec_from_json(nlohmann::json::parse(earlier->spec_json));
    if (param_keys(other) != param_keys(spec)) {
      std::vector<std::string> a, b;
      for (const auto& k : param_keys(spec)) a.push_back(k);
      for (const auto& k : param_keys(other)) b.push_back(k);
      throw SweepError(fmt::format(
          "{}: [sweep] warm_start: sweep '{}' varies {}, this one varies {}: a warm start needs the same parameters",
          spec.file.string(), name, fmt::join(b, ", "), fmt::join(a, ", ")));
    }
  }
}

Proposer::Proposer(store::Store& store, int64_t sweep_id, SweepSpec spec)
    : store_(store), sweep_id_(sweep_id), spec_(std::move(spec)) {}

int64_t Proposer::asked_points(const std::vector<store::SweepTrialRecord>& rows) const {
  const auto seeds = static_cast<int64_t>(std::max<size_t>(1, spec_.seeds.size()));
  return (static_cast<int64_t>(rows.size()) + seeds - 1) / seeds;
}

int64_t Proposer::total_trials() const {
  if (!sequential()) return static_cast<int64_t>(store_.sweep_trials(sweep_id_).size());
  return spec_.trials * static_cast<int64_t>(spec_.seeds.size());
}

bool Proposer::can_ask() const {
  return sequential() && asked_points(store_.sweep_trials(sweep_id_)) < spec_.trials;
}

std::vector<Observation> Proposer::warm_history() const {
  std::vector<Observation> h;
  for (const auto& name : spec_.warm_start) {
    // A warm-start sweep deleted since is no history, not an error.
    const auto earlier = store_.find_sweep(name);
    if (!earlier) continue;
    SweepSpec other = spec_from_json(nlohmann::json::parse(earlier->spec_json));
    // Their results, ranked by this sweep's objective.
    other.objective = spec_.objective;
    other.pruning.metric = spec_.pruning.metric;
    other.pruning.maximize = spec_.pruning.maximize;
    for (auto& o : sweep_history(store_, earlier->id, other, true)) h.push_back(std::move(o));
  }
  return h;
}

std::vector<int64_t> Proposer::ask(const std::string& job_id) {
  std::vector<int64_t> indices;
  store_.transaction([&] {
    indices.clear();
    const auto rows = store_.sweep_trials(sweep_id_);
    const int64_t point_index = asked_points(rows);
    if (!sequential() || point_index >= spec_.trials) return;
    Point p;
    if (point_index < static_cast<int64_t>(spec_.enqueue.size())) {
      p = spec_.enqueue[static_cast<size_t>(point_index)];
    } else {
      std::vector<Observation> history = warm_history();
      for (auto& o : sweep_history(store_, sweep_id_, spec_)) history.push_back(std::move(o));
      TpeOptions o;
      o.startup_trials = spec_.tpe.startup_trials;
      o.candidates = spec_.tpe.candidates;
      o.multivariate = spec_.tpe.multivariate;
      o.constant_liar = spec_.tpe.constant_liar;
      p = propose_tpe(spec_.params, history, derived_seed(spec_.sample_seed, static_cast<uint64_t>(point_index)), o);
    }
    std::vector<std::pair<int64_t, std::string>> add;
    for (const Trial& t : trials_of_point(spec_, p, static_cast<int64_t>(rows.size()))) {
      add.emplace_back(t.index, nlohmann::json(t.overrides).dump());
      indices.push_back(t.index);
    }
    store_.add_sweep_trials(sweep_id_, add);
    if (!job_id.empty()) {
      for (int64_t i : indices) store_.set_trial_job(sweep_id_, i, job_id, "");
    }
  });
  return indices;
}

Proposer::Handout Proposer::ask_external() {
  if (!sequential()) {
    throw SweepError(fmt::format(
        "sweep '{}' is a {} sweep: its trials were fixed when it was created; ask and tell drive method = \"tpe\"",
        spec_.name, spec_.method));
  }
  Handout h;
  store_.transaction([&] {
    std::optional<int64_t> index;
    for (const auto& t : store_.sweep_trials(sweep_id_)) {
      if (t.job_id == kExternalJob && !t.run_id) {
        index = t.index;
        break;
      }
    }
    if (!index) {
      const auto added = ask(kExternalJob);
      if (added.empty()) {
        throw SweepError(fmt::format("sweep '{}' has asked all its {} points (trials = {}); nothing left to ask",
                                     spec_.name, spec_.trials, spec_.trials));
      }
      index = added.front();
    }
    const auto row = store_.sweep_trials(sweep_id_).at(static_cast<size_t>(*index));
    h.trial.index = *index;
    h.trial.point = point_of(row.overrides_json);
    h.trial.seed = seed_of(overrides_of(row.overrides_json));
    for (const auto& o : nlohmann::json::parse(row.overrides_json)) h.trial.overrides.push_back(o.get<std::string>());
    h.run_id = create_trial_run(store_, sweep_id_, spec_.name, spec_.file.string(), row);
    store_.set_environment(h.run_id, {{"sweep.asked_by", "jepa sweep ask"}});
  });
  return h;
}

void Proposer::tell(int64_t index, Outcome outcome, std::optional<double> value, std::optional<int64_t> step,
                    const std::string& reason) {
  if (outcome != Outcome::failed && (!value || !std::isfinite(*value))) {
    throw SweepError(fmt::format("tell {} {}: the value must be a finite number (a trial without one: --failed)",
                                 spec_.name, index));
  }
  store_.transaction([&] {
    const auto rows = store_.sweep_trials(sweep_id_);
    if (index < 0 || index >= static_cast<int64_t>(rows.size())) {
      throw SweepError(fmt::format("sweep '{}' has no trial {} (it has {})", spec_.name, index, rows.size()));
    }
    const auto& t = rows[static_cast<size_t>(index)];
    if (t.job_id != kExternalJob) {
      throw SweepError(fmt::format(
          "trial {} of sweep '{}' is run by the sweep itself, not handed out by `jepa sweep ask`: it records its own "
          "results",
          index, spec_.name));
    }
    if (!t.run_id) {
      throw SweepError(fmt::format("trial {} of sweep '{}' has not been handed out yet (`jepa sweep ask` hands it out)",
                                   index, spec_.name));
    }
    if (t.status != store::RunStatus::running) {
      throw SweepError(fmt::format("trial {} of sweep '{}' already has a result ({}): nothing was changed", index,
                                   spec_.name, t.status ? store::status_name(*t.status) : "?"));
    }
    const std::string metric = effective_objective(spec_).metric;
    if (value && outcome != Outcome::failed) {
      // Pruned: the value is the pruning metric's, at the step it stopped.
      const std::string key = outcome == Outcome::pruned ? spec_.pruning.metric : metric;
      store_.log_metrics(*t.run_id, {{key, step.value_or(0), *value}});
      if (step) store_.heartbeat(*t.run_id, *step);
    }
    switch (outcome) {
      case Outcome::completed:
        store_.finish_run(*t.run_id, store::RunStatus::completed);
        break;
      case Outcome::pruned:
        store_.finish_run(*t.run_id, store::RunStatus::pruned, reason.empty() ? "pruned (jepa sweep tell)" : reason);
        break;
      case Outcome::failed:
        store_.finish_run(*t.run_id, store::RunStatus::failed, reason.empty() ? "failed (jepa sweep tell)" : reason);
        break;
    }
  });
}

}  // namespace jepa::sweep
