// The statistics an objective averages over ranks (sdk::Collective): Gloo or NCCL through the
// run's process group, with a backward pass, so that a loss on a global-batch statistic trains
// each rank's encoder as one process holding the whole batch would.
#pragma once

#include <jepa/sdk/objective.hpp>

#include <cstdint>

namespace jepa::dist {
class Group;
}

namespace jepa::train {

class RankCollective final : public sdk::Collective {
 public:
  explicit RankCollective(dist::Group* group) : group_(group) {}
  void set_step(int64_t step) { step_ = step; }  // named in the error when a peer fails

  int rank() const override;
  int world_size() const override;
  // Forward: the all-reduced mean. Backward: the mean over ranks of the incoming gradients (every
  // rank's loss depends on every rank's samples through the mean), which the gradient reducer's
  // averaging then turns into the single-process gradient.
  torch::Tensor mean(const torch::Tensor& value) override;

 private:
  dist::Group* group_;  // none, or a group of one: mean() is the identity
  int64_t step_ = 0;
};

}  // namespace jepa::train
