#include "sweep/scheduler.hpp"

#include "config/experiment.hpp"
#include "sweep/local_runner.hpp"
#include "sweep/proposer.hpp"
#include "sweep/runner_support.hpp"
#include "sweep/slurm.hpp"
#include "sweep/slurm_runner.hpp"
#include "sweep/spec_json.hpp"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <thread>

namespace jepa::sweep {

namespace fs = std::filesystem;
namespace {

// The value of a distribution at one end: its first or last choice, its low or high bound.
std::string extreme(const Distribution& d, bool high) {
  if (is_discrete(d)) return value_at(d, high ? value_count(d) - 1 : 0);
  return format_double(high ? d.high : d.low);
}

// TPE's points are unknown before it runs: what is checked against the plugins up front is every
// parameter at both ends of its range (the others at their low ends, a condition's parents at a
// value that makes it exist). A value inside a range that a plugin rejects still fails only its
// own trial, recorded with the reason.
std::vector<Point> extreme_points(const SweepSpec& spec) {
  std::vector<Point> points;
  std::set<Point> seen;
  for (const auto& [key, d] : spec.params) {
    std::map<std::string, std::string> forced;
    for (const Distribution* c = &d; c->when;) {
      forced[c->when->parent] = c->when->values.front();
      const auto parent = std::find_if(spec.params.begin(), spec.params.end(),
                                       [&](const Param& p) { return p.first == c->when->parent; });
      if (parent == spec.params.end()) break;
      c = &parent->second;
    }
    for (const bool high : {false, true}) {
      Point p;
      for (const auto& [k, q] : spec.params) {
        if (!is_active(q, p)) continue;
        p[k] = k == key ? extreme(q, high) : forced.count(k) ? forced.at(k) : extreme(q, false);
      }
      if (seen.insert(p).second) points.push_back(std::move(p));
    }
  }
  return points;
}

std::string describe_distribution(const Distribution& d) {
  std::string s;
  if (d.kind == Distribution::Kind::choice) {
    s = fmt::format("choice [{}]", join(d.choices, ", "));
  } else {
    s = fmt::format("{} [{}, {}]", kind_name(d.kind), format_double(d.low), format_double(d.high));
    if (d.step > 0) s += fmt::format(" step {}", format_double(d.step));
    if (d.log) s += " log";
  }
  if (d.when) s += fmt::format("  when {} = {}", d.when->parent, join(d.when->values, " | "));
  return s;
}

std::vector<Trial> validated_trials(const SweepSpec& spec, const loader::Registry& registry) {
  std::vector<Trial> trials;
  if (spec.method == "tpe") {
    std::vector<Point> points = spec.enqueue;
    for (auto& p : extreme_points(spec)) points.push_back(std::move(p));
    SweepSpec one_seed = spec;
    one_seed.seeds = {spec.seeds.front()};
    for (const auto& p : points) trials.push_back(trials_of_point(one_seed, p, static_cast<int64_t>(trials.size()))[0]);
  } else {
    trials = expand_trials(spec);
  }
  if (trials.empty()) throw SweepError(fmt::format("{}: the sweep expands to no trials", spec.file.string()));
  for (const auto& t : trials) {
    try {
      config::load_experiment(spec.file, t.overrides, registry);
    } catch (const config::ConfigError& e) {
      const bool tpe = spec.method == "tpe";
      throw config::ConfigError(
          fmt::format("{} {} ({}): {}", tpe ? "point" : "trial", t.index, join(t.overrides, " "), e.what()));
    }
  }
  return trials;
}

}  // namespace

void describe_sweep(const fs::path& file, const loader::Registry& registry) {
  const SweepSpec spec = load_sweep_spec(file);
  const auto trials = validated_trials(spec, registry);
  const ObjectiveSpec objective = effective_objective(spec);
  if (spec.method == "tpe") {
    fmt::print(
        "sweep {}: tpe, {} point{} x {} seed{} = {} trials, {} {} ({} value), {} random start-up "
        "points, {} candidates{}{}\n",
        spec.name, spec.trials, spec.trials == 1 ? "" : "s", spec.seeds.size(), spec.seeds.size() == 1 ? "" : "s",
        spec.trials * static_cast<int64_t>(spec.seeds.size()), objective.maximize ? "maximise" : "minimise",
        objective.metric, objective.value, spec.tpe.startup_trials, spec.tpe.candidates,
        spec.tpe.multivariate ? ", multivariate" : "", spec.tpe.constant_liar ? ", constant liar" : "");
  } else {
    fmt::print("sweep {}: {} {} trial{}", spec.name, trials.size(), spec.method, trials.size() == 1 ? "" : "s");
  }
  fmt::print("{}pruning {}{}\n", spec.method == "tpe" ? "" : ", ", spec.pruning.rule,
             spec.pruning.rule == "none"
                 ? ""
                 : fmt::format(" on {} ({})", spec.pruning.metric, spec.pruning.maximize ? "max" : "min"));
  if (spec.launcher == "slurm") {
    const SlurmSpec& s = spec.slurm;
    std::vector<std::string> args = slurm::sbatch_command(s, "NAME", "LOG", "SCRIPT");
    args.erase(args.begin(), args.begin() + 5);  // sbatch --parsable --job-name --output --open-mode
    args.pop_back();
    fmt::print("launcher: slurm, one job per trial, {} rank{} each ({} node{} x {} task{}), {}\n", s.ranks(),
               s.ranks() == 1 ? "" : "s", s.nodes, s.nodes == 1 ? "" : "s", s.tasks_per_node,
               s.tasks_per_node == 1 ? "" : "s",
               spec.max_parallel > 0 ? fmt::format("at most {} in the queue", spec.max_parallel)
                                     : std::string("every trial queued at once"));
    fmt::print("sbatch {}\n", join(args, " "));
  } else {
    const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
    const auto slots = plan_slots(spec, gpus, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())),
                                  std::getenv("CUDA_VISIBLE_DEVICES"));
    std::vector<std::string> labels;
    for (const auto& s : slots) labels.push_back(s.label);
    fmt::print("slots: {} ({} thread{} per trial)\n", join(labels, ", "), spec.threads_per_trial,
               spec.threads_per_trial == 1 ? "" : "s");
  }
  if (spec.method == "tpe") {
    fmt::print("space:\n");
    for (const auto& [key, d] : spec.params) fmt::print("  {:<32} {}\n", key, describe_distribution(d));
    if (!spec.warm_start.empty()) fmt::print("warm start from: {}\n", join(spec.warm_start, ", "));
    fmt::print("{} point{} checked against the plugins (the enqueued ones, then every parameter's extremes):\n",
               trials.size(), trials.size() == 1 ? "" : "s");
  }
  for (const auto& t : trials) {
    std::vector<std::string> parts;  // in the file's order
    for (const auto& o : t.overrides) {
      if (o.rfind("run.seed=", 0) != 0) parts.push_back(o);
    }
    if (spec.method == "tpe") {
      fmt::print("  {} {}\n", t.index < static_cast<int64_t>(spec.enqueue.size()) ? "enqueued" : "extreme ",
                 join(parts, "  "));
    } else {
      fmt::print("  trial {:3}  seed {:<3} {}\n", t.index, t.seed, join(parts, "  "));
    }
  }
}

namespace {

bool run_recorded(store::Store& store, int64_t id, const nlohmann::json& spec_json, const SweepRunOptions& options) {
  Proposer proposer(store, id, spec_from_json(spec_json));
  if (spec_json.value("launcher", std::string("local")) == "slurm") {
    return run_slurm(store, id, spec_json, options, proposer);
  }
  return run_local(store, id, spec_json, options, proposer);
}

}  // namespace

bool start_sweep(const fs::path& file, const loader::Registry& registry, const SweepRunOptions& options) {
  const SweepSpec spec = load_sweep_spec(file);
  const auto trials = validated_trials(spec, registry);
  if (spec.launcher == "slurm") {
    // Before anything is recorded: a machine without SLURM's client commands runs nothing.
    const auto r = slurm::run_command({"sbatch", "--version"}, 30.0);
    if (r.status != 0) {
      throw SweepError(fmt::format(
          "{}: [sweep] launcher = \"slurm\", but sbatch does not run here ({}): run the sweep on a machine that "
          "submits SLURM jobs (a login node), or use launcher = \"local\"",
          spec.file.string(), r.err.empty() ? fmt::format("exit status {}", r.status) : r.err.substr(0, 200)));
    }
  }
  // Opened only once every trial is valid: a rejected sweep leaves no database behind (a warm
  // start needs the earlier sweeps' database, which exists).
  if (!spec.warm_start.empty() && !fs::exists(options.db)) {
    throw SweepError(fmt::format("{}: [sweep] warm_start: no results database at {} (pass the earlier sweeps' --db)",
                                 spec.file.string(), options.db.string()));
  }
  store::Store store(options.db);
  check_warm_start(store, spec);
  if (auto existing = store.find_sweep(spec.name)) {
    throw SweepError(fmt::format(
        "a sweep named '{}' exists already (id {}, {}): continue it with `jepa sweep --resume {}`, or give this one "
        "another [sweep] name",
        spec.name, existing->id, existing->status, spec.name));
  }
  nlohmann::json spec_json = spec_to_json(spec);
  const int64_t id = store.create_sweep(spec.name, "{}");
  // Trials run from a copy of the experiment file, so that editing the file never changes a
  // sweep that is being resumed.
  const fs::path dir =
      (options.db.has_parent_path() ? options.db.parent_path() : fs::path(".")) / "sweeps" / std::to_string(id);
  fs::create_directories(dir);
  const fs::path copy = fs::absolute(dir / file.filename());
  fs::copy_file(file, copy, fs::copy_options::overwrite_existing);
  spec_json["experiment"] = copy.string();
  if (spec.launcher == "slurm") {
    // Trials on other nodes read the experiment, write their journals, logs and checkpoints
    // here: a folder that every node sees.
    const fs::path shared =
        spec.slurm.shared_dir.empty()
            ? fs::absolute(dir)
            : fs::absolute(fs::path(spec.slurm.shared_dir) / fmt::format("sweep-{}-{}", id, spec.name));
    fs::create_directories(shared);
    const fs::path shared_copy = shared / file.filename();
    if (shared_copy != copy) fs::copy_file(file, shared_copy, fs::copy_options::overwrite_existing);
    spec_json["experiment"] = shared_copy.string();
    spec_json["slurm"]["shared_dir"] = shared.string();
  }
  // The spec is stored once the copy's folder (named by the sweep id) exists.
  store.set_sweep_spec(id, spec_json.dump());
  if (spec.method != "tpe") {
    // Fixed up front; a TPE sweep stores each point as it proposes it.
    std::vector<std::pair<int64_t, std::string>> rows;
    for (const auto& t : trials) rows.emplace_back(t.index, nlohmann::json(t.overrides).dump());
    store.add_sweep_trials(id, rows);
  }
  if (options.create_only) {
    fmt::print(stderr,
               "sweep {} (id {}) recorded, nothing run: hand out its trials with `jepa sweep ask {}` and report them "
               "with `jepa sweep tell {} INDEX VALUE`, or run it here with `jepa sweep --resume {}`\n",
               spec.name, id, spec.name, spec.name, spec.name);
    store.set_sweep_status(id, "CREATED");
    return true;
  }
  return run_recorded(store, id, spec_json, options);
}

bool resume_sweep(const std::string& name, store::Store& store, const SweepRunOptions& options) {
  const auto sweep = store.find_sweep(name);
  if (!sweep) throw SweepError(fmt::format("no sweep '{}' in {}", name, store.path().string()));
  const auto spec_json = nlohmann::json::parse(sweep->spec_json);
  return run_recorded(store, sweep->id, spec_json, options);
}

}  // namespace jepa::sweep
