// The trainer's side of sweep pruning: when the run is a sweep trial whose sweep has a pruning
// rule, every value logged for the rule's metric is weighed against the other trials' values in
// the store (pruning/rules.hpp decides), and a "prune" ends the run as PRUNED with the reason.
#pragma once

#include "pruning/rules.hpp"
#include "store/store.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace jepa::train {

class TrialPruner {
 public:
  // Inactive unless the run belongs to a sweep whose spec has a rule other than "none". Loads the
  // run's own earlier values (a resumed trial keeps its history).
  TrialPruner(const store::Recorder& store, int64_t run_id);
  bool active() const { return active_; }
  const std::string& metric() const { return spec_.metric; }
  // Call with every value logged for metric(); returns the reason when the trial should stop.
  std::optional<std::string> observe(int64_t step, double value);

 private:
  const store::Recorder& store_;
  int64_t run_id_;
  bool active_ = false;
  pruning::PruningSpec spec_;
  pruning::History mine_;
};

}  // namespace jepa::train
