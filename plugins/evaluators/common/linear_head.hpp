// The linear classifier the probing evaluators (linear_probe, low_shot) train on frozen
// features: standardised inputs, one linear layer, Adam. Kept in one place so that both use
// the same recipe and draw from their private generators in the same order.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>

namespace jepa::evaluators {

// Per-feature standardisation with the training features' statistics.
struct Standardizer {
  explicit Standardizer(const torch::Tensor& train)
      : mean(train.mean(0, true)), scale(train.std(0, /*unbiased=*/false, true).clamp_min(1e-6)) {}
  torch::Tensor operator()(const torch::Tensor& x) const { return (x - mean) / scale; }
  torch::Tensor mean;
  torch::Tensor scale;
};

class LinearHead {
 public:
  // Raw parameters rather than torch::nn::Linear, whose constructor draws its initial weights
  // from the global generator; initialised as nn.Linear's default, from `gen`.
  LinearHead(int64_t dim, int64_t classes, double lr, double weight_decay, at::Generator& gen) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(dim));
    weight_ = torch::empty({classes, dim}).uniform_(-bound, bound, gen).requires_grad_();
    bias_ = torch::empty({classes}).uniform_(-bound, bound, gen).requires_grad_();
    opt_ = std::make_unique<torch::optim::Adam>(std::vector<torch::Tensor>{weight_, bias_},
                                                torch::optim::AdamOptions(lr).weight_decay(weight_decay));
  }

  torch::Tensor operator()(const torch::Tensor& x) const { return torch::nn::functional::linear(x, weight_, bias_); }

  // One Adam step of cross-entropy on rows `idx` of (x, y).
  void step(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& idx) {
    const auto loss = torch::nn::functional::cross_entropy((*this)(x.index_select(0, idx)), y.index_select(0, idx));
    opt_->zero_grad();
    loss.backward();
    opt_->step();
  }

  // The learning rate of the steps that follow (a schedule sets it before each step).
  void set_lr(double lr) {
    for (auto& group : opt_->param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
  }

  // Top-1 accuracy in percent.
  double accuracy(const torch::Tensor& x, const torch::Tensor& y) const {
    torch::NoGradGuard no_grad;
    return 100.0 * (*this)(x).argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
  }

 private:
  torch::Tensor weight_;
  torch::Tensor bias_;
  std::unique_ptr<torch::optim::Adam> opt_;
};

}  // namespace jepa::evaluators
