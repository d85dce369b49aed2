#include "train/trial_pruner.hpp"

#include <nlohmann/json.hpp>

#include <map>

namespace jepa::train {

TrialPruner::TrialPruner(const store::Recorder& store, int64_t run_id) : store_(store), run_id_(run_id) {
  const std::string spec_json = store.sweep_spec_json(run_id);
  if (spec_json.empty()) return;
  spec_ = pruning::pruning_from_json(nlohmann::json::parse(spec_json, nullptr, false));
  if (spec_.rule == "none") return;
  active_ = true;
  for (const auto& p : store.metrics(run_id, spec_.metric)) mine_[p.step] = p.value;
}

std::optional<std::string> TrialPruner::observe(int64_t step, double value) {
  if (!active_) return std::nullopt;
  mine_[step] = value;
  // Every other trial's history of the metric. The others log from their own processes (or
  // nodes: then from the sweep host's latest snapshot); what has reached the store so far is
  // what counts, as in any asynchronous pruner.
  std::vector<pruning::History> histories;
  for (auto& [id, h] : store_.other_trials(run_id_, spec_.metric)) {
    pruning::History history;
    for (const auto& [s, v] : h) history[s] = v;
    histories.push_back(std::move(history));
  }
  return pruning::should_prune(spec_, mine_, histories, step);
}

}  // namespace jepa::train
