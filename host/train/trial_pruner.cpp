#include "train/trial_pruner.hpp"

#include "sweep/spec_json.hpp"

#include <map>

namespace jepa::train {

TrialPruner::TrialPruner(const store::Store& store, int64_t run_id) : store_(store), run_id_(run_id) {
  const auto run = store.find_run(run_id);
  if (!run || !run->sweep_id) return;
  const auto sweep = store.find_sweep(std::to_string(*run->sweep_id));
  if (!sweep) return;
  spec_ = sweep::pruning_from_json(nlohmann::json::parse(sweep->spec_json, nullptr, false));
  if (spec_.rule == "none") return;
  sweep_id_ = *run->sweep_id;
  active_ = true;
  for (const auto& p : store.metrics(run_id, spec_.metric)) mine_[p.step] = p.value;
}

std::optional<std::string> TrialPruner::observe(int64_t step, double value) {
  if (!active_) return std::nullopt;
  mine_[step] = value;
  // Every other trial's history of the metric. The others log from their own processes; what
  // they have flushed so far is what counts, as in any asynchronous pruner.
  std::map<int64_t, sweep::History> others;
  store_.query(
      "SELECT m.run_id, m.step, m.value FROM metrics m WHERE m.key = ? AND m.run_id IN "
      "(SELECT id FROM runs WHERE sweep_id = ? AND id != ?)",
      {spec_.metric, sweep_id_, run_id_}, [&](const store::Row& r) { others[r.int64(0)][r.int64(1)] = r.real(2); });
  std::vector<sweep::History> histories;
  histories.reserve(others.size());
  for (auto& [id, h] : others) histories.push_back(std::move(h));
  return sweep::should_prune(spec_, mine_, histories, step);
}

}  // namespace jepa::train
