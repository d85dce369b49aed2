#include "sweep/spec_json.hpp"

namespace jepa::sweep {

nlohmann::json spec_to_json(const SweepSpec& s) {
  nlohmann::json params = nlohmann::json::array();
  for (const auto& [key, d] : s.params) {
    const char* kind = d.kind == Distribution::Kind::choice        ? "choice"
                       : d.kind == Distribution::Kind::uniform     ? "uniform"
                       : d.kind == Distribution::Kind::log_uniform ? "log_uniform"
                                                                   : "int";
    nlohmann::json j{{"key", key}, {"kind", kind}};
    if (d.kind == Distribution::Kind::choice) {
      j["choices"] = d.choices;
    } else {
      j["low"] = d.low;
      j["high"] = d.high;
    }
    if (d.step > 0) j["step"] = d.step;
    if (d.log) j["log"] = true;
    if (d.when) j["when"] = {{"parent", d.when->parent}, {"values", d.when->values}};
    params.push_back(j);
  }
  nlohmann::json enqueue = nlohmann::json::array();
  for (const auto& p : s.enqueue) enqueue.push_back(p);
  const PruningSpec& p = s.pruning;
  const SlurmSpec& sl = s.slurm;
  return {
      {"file", s.file.string()},
      {"launcher", s.launcher},
      {"slurm",
       {{"partition", sl.partition},
        {"time_limit", sl.time_limit},
        {"nodes", sl.nodes},
        {"tasks_per_node", sl.tasks_per_node},
        {"gpus_per_task", sl.gpus_per_task},
        {"cpus_per_task", sl.cpus_per_task},
        {"mem", sl.mem},
        {"account", sl.account},
        {"qos", sl.qos},
        {"signal_grace", sl.signal_grace},
        {"requeue", sl.requeue},
        {"sbatch_args", sl.sbatch_args},
        {"shared_dir", sl.shared_dir},
        {"poll_seconds", sl.poll_seconds}}},
      {"name", s.name},
      {"method", s.method},
      {"trials", s.trials},
      {"sample_seed", s.sample_seed},
      {"seeds", s.seeds},
      {"devices", s.devices},
      {"gpus_per_trial", s.gpus_per_trial},
      {"trials_per_gpu", s.trials_per_gpu},
      {"threads_per_trial", s.threads_per_trial},
      {"max_parallel", s.max_parallel},
      {"params", params},
      {"objective",
       {{"metric", s.objective.metric}, {"mode", s.objective.maximize ? "max" : "min"}, {"value", s.objective.value}}},
      {"tpe",
       {{"startup_trials", s.tpe.startup_trials},
        {"candidates", s.tpe.candidates},
        {"multivariate", s.tpe.multivariate},
        {"constant_liar", s.tpe.constant_liar}}},
      {"enqueue", enqueue},
      {"warm_start", s.warm_start},
      {"pruning",
       {{"rule", p.rule},
        {"metric", p.metric},
        {"mode", p.maximize ? "max" : "min"},
        {"warmup_steps", p.warmup_steps},
        {"min_trials", p.min_trials},
        {"grace_steps", p.grace_steps},
        {"reduction", p.reduction}}}};
}

SweepSpec spec_from_json(const nlohmann::json& j) {
  SweepSpec s;
  s.name = j.value("name", std::string("sweep"));
  s.method = j.value("method", s.method);
  s.trials = j.value("trials", s.trials);
  s.sample_seed = j.value("sample_seed", s.sample_seed);
  s.seeds = j.value("seeds", s.seeds);
  s.devices = j.value("devices", s.devices);
  s.gpus_per_trial = j.value("gpus_per_trial", s.gpus_per_trial);
  s.trials_per_gpu = j.value("trials_per_gpu", s.trials_per_gpu);
  s.threads_per_trial = j.value("threads_per_trial", s.threads_per_trial);
  s.max_parallel = j.value("max_parallel", s.max_parallel);
  s.pruning = pruning_from_json(j);
  // Sweeps recorded before these keys existed have none of them.
  if (j.contains("params") && j["params"].is_array()) {
    for (const auto& p : j["params"]) {
      Distribution d;
      const std::string kind = p.value("kind", std::string("choice"));
      d.kind = kind == "uniform"       ? Distribution::Kind::uniform
               : kind == "log_uniform" ? Distribution::Kind::log_uniform
               : kind == "int"         ? Distribution::Kind::int_range
                                       : Distribution::Kind::choice;
      d.choices = p.value("choices", d.choices);
      d.low = p.value("low", d.low);
      d.high = p.value("high", d.high);
      d.step = p.value("step", d.step);
      d.log = p.value("log", d.log);
      if (p.contains("when")) {
        d.when =
            Condition{p["when"].value("parent", std::string()), p["when"].value("values", std::vector<std::string>())};
      }
      s.params.emplace_back(p.value("key", std::string()), std::move(d));
    }
  }
  if (j.contains("objective") && j["objective"].is_object()) {
    const auto& o = j["objective"];
    s.objective.metric = o.value("metric", s.objective.metric);
    s.objective.maximize = o.value("mode", std::string("min")) == "max";
    s.objective.value = o.value("value", s.objective.value);
  }
  if (j.contains("tpe") && j["tpe"].is_object()) {
    const auto& t = j["tpe"];
    s.tpe.startup_trials = t.value("startup_trials", s.tpe.startup_trials);
    s.tpe.candidates = t.value("candidates", s.tpe.candidates);
    s.tpe.multivariate = t.value("multivariate", s.tpe.multivariate);
    s.tpe.constant_liar = t.value("constant_liar", s.tpe.constant_liar);
  }
  if (j.contains("enqueue") && j["enqueue"].is_array()) {
    for (const auto& p : j["enqueue"]) s.enqueue.push_back(p.get<Point>());
  }
  s.warm_start = j.value("warm_start", s.warm_start);
  // Sweeps recorded before launchers existed ran locally.
  s.launcher = j.value("launcher", s.launcher);
  if (j.contains("slurm") && j["slurm"].is_object()) {
    const auto& sl = j["slurm"];
    SlurmSpec& o = s.slurm;
    o.partition = sl.value("partition", o.partition);
    o.time_limit = sl.value("time_limit", o.time_limit);
    o.nodes = sl.value("nodes", o.nodes);
    o.tasks_per_node = sl.value("tasks_per_node", o.tasks_per_node);
    o.gpus_per_task = sl.value("gpus_per_task", o.gpus_per_task);
    o.cpus_per_task = sl.value("cpus_per_task", o.cpus_per_task);
    o.mem = sl.value("mem", o.mem);
    o.account = sl.value("account", o.account);
    o.qos = sl.value("qos", o.qos);
    o.signal_grace = sl.value("signal_grace", o.signal_grace);
    o.requeue = sl.value("requeue", o.requeue);
    o.sbatch_args = sl.value("sbatch_args", o.sbatch_args);
    o.shared_dir = sl.value("shared_dir", o.shared_dir);
    o.poll_seconds = sl.value("poll_seconds", o.poll_seconds);
  }
  return s;
}

}  // namespace jepa::sweep
