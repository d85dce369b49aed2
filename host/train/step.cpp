#include "train/step.hpp"

#include "train/autocast.hpp"

#include <fmt/format.h>
#include <torch/torch.h>
#include <jepa/sdk/tensor_masks.hpp>

#include <cmath>

namespace jepa::train {

namespace {

std::vector<torch::Tensor> index_tensors(const std::vector<int64_t>& flat, int blocks, int batch, int length,
                                         torch::Device device) {
  const auto all = torch::tensor(flat, torch::kLong).view({blocks, batch, length}).to(device);
  std::vector<torch::Tensor> out;
  for (int b = 0; b < blocks; ++b) out.push_back(all[b]);
  return out;
}

void set_schedule(torch::optim::AdamW& opt, double lr, double wd) {
  auto& groups = opt.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(groups[g].options());
    o.lr(lr);
    if (g < 2) o.weight_decay(wd);  // groups 2 and 3 are excluded from weight decay
  }
}

}  // namespace

TrainStep::TrainStep(Models& models, torch::optim::AdamW& optimizer, loader::MaskingStrategy& masking,
                     const Schedules& schedules, uint64_t seed, torch::Device device, Precision precision,
                     DataParallel parallel)
    : m_(models),
      optimizer_(optimizer),
      masking_(masking),
      schedules_(schedules),
      seed_(seed),
      device_(device),
      precision_(precision),
      parallel_(parallel),
      grid_(models.encoder->patch_grid()) {
  for (auto& p : m_.target->parameters()) target_params_.push_back(p);
  for (auto& p : m_.encoder->parameters()) online_params_.push_back(p);
  for (auto* module :
       {static_cast<torch::nn::Module*>(m_.encoder.get()), static_cast<torch::nn::Module*>(m_.predictor.get())}) {
    for (auto& p : module->parameters()) {
      if (p.requires_grad()) trained_params_.push_back(p);  // not the fixed sin-cos tables
    }
  }
  if (parallel_.group != nullptr && parallel_.group->size() > 1) {
    reducer_ = std::make_unique<dist::GradientReducer>(*parallel_.group, trained_params_, parallel_.bucket_bytes);
  }
}

sdk::MaskSample TrainStep::masks(int batch, int64_t it) {
  const int gh = static_cast<int>(grid_[0]);
  const int gw = static_cast<int>(grid_[1]);
  const dist::Group* g = parallel_.group;
  if (g == nullptr || g->size() == 1) return masking_.sample({gh, gw, batch, seed_, it});
  if (!parallel_.global_masks) {
    // Rank 0 keeps the seed, so its masks are those of a single process.
    const uint64_t seed = seed_ ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(g->rank()));
    return masking_.sample({gh, gw, batch, seed, it});
  }
  const int world = g->size();
  const auto all = masking_.sample({gh, gw, batch * world, seed_, it});
  sdk::MaskSample mine = all;
  mine.batch_size = batch;
  mine.context.clear();
  mine.target.clear();
  for (int b = 0; b < all.context_blocks; ++b) {
    for (int i = 0; i < batch; ++i) {
      const int64_t* row = all.context_row(b, g->rank() + world * i);
      mine.context.insert(mine.context.end(), row, row + all.context_length);
    }
  }
  for (int b = 0; b < all.target_blocks; ++b) {
    for (int i = 0; i < batch; ++i) {
      const int64_t* row = all.target_row(b, g->rank() + world * i);
      mine.target.insert(mine.target.end(), row, row + all.target_length);
    }
  }
  return mine;
}

StepForward TrainStep::forward(const torch::Tensor& batch_images, int64_t it) {
  StepForward f;
  const auto B = static_cast<int>(batch_images.size(0));
  const auto s = masks(B, it);
  f.context_length = s.context_length;
  f.target_length = s.target_length;
  const auto ctx = index_tensors(s.context, s.context_blocks, B, s.context_length, device_);
  const auto tgt = index_tensors(s.target, s.target_blocks, B, s.target_length, device_);
  const auto images = batch_images.to(device_, /*non_blocking=*/true);

  torch::Tensor h;
  {
    AutocastScope autocast(device_, precision_ == Precision::bf16);
    {
      torch::NoGradGuard no_grad;
      h = m_.target->forward(images, {});
    }
    f.prediction = m_.predictor->forward(m_.encoder->forward(images, ctx), ctx, tgt);
  }
  // In fp32 whatever the forward passes ran in, as upstream's autocast does on CUDA (layer_norm
  // and smooth_l1_loss are on its fp32 list); CPU autocast would leave them in bf16.
  {
    torch::NoGradGuard no_grad;
    h = torch::layer_norm(h.to(torch::kFloat32), {h.size(-1)});  // non-affine, eps 1e-5, as upstream
    f.target = sdk::repeat_interleave_batch(sdk::apply_masks(h, tgt), B, s.context_blocks);
  }
  f.loss = torch::nn::functional::smooth_l1_loss(f.prediction.to(torch::kFloat32), f.target);
  return f;
}

StepResult TrainStep::run(const torch::Tensor& batch_images, int64_t it) {
  StepResult r;
  // Upstream advances its schedulers before the step, counting from 1.
  r.lr = schedules_.lr_at(it + 1);
  r.weight_decay = schedules_.weight_decay_at(it + 1);
  set_schedule(optimizer_, r.lr, r.weight_decay);

  const StepForward f = forward(batch_images, it);
  r.context_length = f.context_length;
  r.target_length = f.target_length;
  const torch::Tensor& loss = f.loss;
  r.loss = loss.item<double>();
  dist::Group* group = parallel_.group;
  if (group != nullptr) r.loss = group->mean(r.loss, it + 1);  // NaN on one rank is NaN on all
  if (!std::isfinite(r.loss)) throw DivergedError(fmt::format("diverged at step {}", it + 1));
  if (reducer_) {
    reducer_->prepare(it + 1);  // zeroes the buckets that the gradients are slots of
  } else {
    optimizer_.zero_grad();
  }
  loss.backward();  // the reducer's hooks start the gradient all-reduces as backward goes
  if (reducer_) reducer_->finish();
  optimizer_.step();

  // EMA over all encoder parameters, after the optimizer step: target = m * target + (1 - m) * online.
  r.momentum = schedules_.momentum_at(it);
  torch::NoGradGuard no_grad;
  torch::_foreach_mul_(target_params_, r.momentum);
  torch::_foreach_add_(target_params_, online_params_, 1.0 - r.momentum);
  return r;
}

}  // namespace jepa::train
