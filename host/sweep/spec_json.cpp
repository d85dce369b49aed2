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
    params.push_back(j);
  }
  const PruningSpec& p = s.pruning;
  return {{"file", s.file.string()},
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
  return s;
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

}  // namespace jepa::sweep
