// The results database that results_cli_test and ui_test read: a sweep "lr-grid" of two
// learning rates (three and four seeds, runs 1-7, COMPLETED, with train/loss and probe/top1), a
// FAILED run of the sweep (8, NaN loss, "diverged at step 10") and a RUNNING run outside it
// whose name is SQL ("o'brien; DROP TABLE runs", 9). tests/golden/compare_lr_grid.txt is
// `jepa compare --sweep lr-grid` of it.
#pragma once

#include "store/store.hpp"

#include <limits>
#include <string>

namespace jepa_test {

inline void add_lr_grid_runs(jepa::store::Store& store) {
  using jepa::store::RunStatus;
  const int64_t sweep = store.create_sweep("lr-grid", "{}");
  // Two learning rates, three and four seeds; a failed run; a run outside the sweep.
  const struct {
    const char* lr;
    uint64_t seed;
    double top1;
    double loss;
  } runs[] = {{"0.002", 0, 77.9, 0.21}, {"0.001", 0, 75.1, 0.25}, {"0.002", 1, 78.4, 0.2}, {"0.001", 1, 76.3, 0.24},
              {"0.001", 2, 74.8, 0.26}, {"0.002", 2, 76.9, 0.22}, {"0.002", 3, 78.8, 0.19}};
  for (const auto& r : runs) {
    const std::string name = std::string("lr") + r.lr + "-s" + std::to_string(r.seed);
    const int64_t id = store.create_run(name, "{\"run\": {}}", "grid.toml", r.seed);
    store.set_run_sweep(id, sweep);
    store.set_params(id, {{"optimization.lr", r.lr},
                          {"run.seed", std::to_string(r.seed)},
                          {"run.name", name},
                          {"masking.strategy", "multiblock"}});
    store.log_metrics(
        id,
        {{"train/loss", 10, 0.5, 1.8e9}, {"train/loss", 20, r.loss, 1.8e9 + 1}, {"probe/top1", 20, r.top1, 1.8e9 + 2}});
    store.add_evaluation(id, {"probe", "top1", r.top1, 20, "{}"});
    store.finish_run(id, RunStatus::completed);
  }
  const int64_t failed = store.create_run("lr0.004-s0", "{}", "grid.toml", 0);
  store.set_run_sweep(failed, sweep);
  store.set_params(failed, {{"optimization.lr", "0.004"}, {"run.seed", "0"}, {"masking.strategy", "multiblock"}});
  store.log_metrics(failed, {{"train/loss", 10, std::numeric_limits<double>::quiet_NaN(), 1.8e9}});
  store.finish_run(failed, RunStatus::failed, "diverged at step 10");
  const int64_t other = store.create_run("o'brien; DROP TABLE runs", "{}", "x.toml", 0);
  store.set_params(other, {{"optimization.lr", "0.001"}});
}

}  // namespace jepa_test
