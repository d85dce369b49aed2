#include "objectives.hpp"

#include <cmath>

namespace jepa::objectives {

sdk::TargetKind target_kind(const std::string& name) {
  if (name == "online") return sdk::TargetKind::online;
  if (name == "online_detached") return sdk::TargetKind::online_detached;
  return sdk::TargetKind::ema;
}

torch::Tensor prediction_term(const sdk::ObjectiveInputs& in, const std::string& distance) {
  const auto n_ctx = static_cast<int64_t>(in.context_masks.size());
  torch::Tensor h;
  {
    // The same operations, in the same order, as the host ran before objectives were plugins:
    // the default objective's losses are those of earlier runs bit for bit.
    const bool grad = in.target_tokens.requires_grad();
    torch::AutoGradMode mode(grad && torch::GradMode::is_enabled());
    h = in.target_tokens.to(torch::kFloat32);
    h = torch::layer_norm(h, {h.size(-1)});
    h = sdk::repeat_interleave_batch(sdk::apply_masks(h, in.target_masks), in.batch_size, n_ctx);
  }
  const auto z = in.predictions.to(torch::kFloat32);
  if (distance == "l1") return torch::nn::functional::l1_loss(z, h);
  if (distance == "mse") return torch::nn::functional::mse_loss(z, h);
  return torch::nn::functional::smooth_l1_loss(z, h);
}

torch::Tensor pooled(const torch::Tensor& tokens, int64_t batch) {
  const auto x = tokens.to(torch::kFloat32);
  return x.reshape({-1, batch, x.size(-2), x.size(-1)}).mean(std::vector<int64_t>{0, 2});
}

Projector::Projector(int64_t in_dim, const std::vector<double>& widths) : out_dim_(in_dim) {
  layers_ = register_module("layers", torch::nn::Sequential());
  for (size_t i = 0; i < widths.size(); ++i) {
    const auto width = static_cast<int64_t>(widths[i]);
    layers_->push_back(torch::nn::Linear(out_dim_, width));
    if (i + 1 < widths.size()) {
      layers_->push_back(torch::nn::BatchNorm1d(width));
      layers_->push_back(torch::nn::ReLU());
    }
    out_dim_ = width;
  }
}

torch::Tensor Projector::forward(torch::Tensor x) {
  return layers_->is_empty() ? x : layers_->forward(x);
}

std::vector<double> projector_widths(const sdk::Params& p, const std::string& key) {
  auto widths = p.get_list(key);
  for (double w : widths) {
    if (w < 1 || w != std::floor(w)) {
      throw sdk::ParamError(key, "widths must be whole numbers >= 1 (e.g. [512, 64]); [] = no projector");
    }
  }
  return widths;
}

}  // namespace jepa::objectives
