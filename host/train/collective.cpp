#include "train/collective.hpp"

#include "distributed/group.hpp"

#include <torch/torch.h>

namespace jepa::train {

namespace {

struct RankMean : torch::autograd::Function<RankMean> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& value, int64_t group,
                               int64_t step) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["step"] = step;
    return reinterpret_cast<dist::Group*>(group)->average(value, step);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* group = reinterpret_cast<dist::Group*>(ctx->saved_data["group"].toInt());
    const int64_t step = ctx->saved_data["step"].toInt();
    return {group->average(grads[0], step), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

int RankCollective::rank() const {
  return group_ != nullptr ? group_->rank() : 0;
}

int RankCollective::world_size() const {
  return group_ != nullptr ? group_->size() : 1;
}

torch::Tensor RankCollective::mean(const torch::Tensor& value) {
  if (group_ == nullptr || group_->size() == 1) return value;
  // The group travels as an integer: autograd's saved data holds IValues, not pointers.
  return RankMean::apply(value, static_cast<int64_t>(reinterpret_cast<intptr_t>(group_)), step_);
}

}  // namespace jepa::train
