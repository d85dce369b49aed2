#include "train/step.hpp"

#include "train/autocast.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace jepa::train {

namespace {

// [blocks, batch, length] on the CPU; pinned for a CUDA run, so that the copy to the device is
// asynchronous (from pageable memory CUDA copies synchronously whatever non_blocking says).
torch::Tensor host_indices(const std::vector<int64_t>& flat, int blocks, int batch, int length, bool pinned) {
  auto out = torch::empty({blocks, batch, length}, torch::TensorOptions().dtype(torch::kLong).pinned_memory(pinned));
  std::copy(flat.begin(), flat.end(), out.data_ptr<int64_t>());
  return out;
}

std::vector<torch::Tensor> per_block(const torch::Tensor& host, torch::Device device) {
  const auto all = host.to(device, /*non_blocking=*/true);
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < all.size(0); ++b) out.push_back(all[b]);
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
      grid_(models.encoder->patch_grid()),
      collective_(parallel.group) {
  if (m_.has_ema_target()) {
    for (auto& p : m_.target->parameters()) target_params_.push_back(p);
    for (auto& p : m_.encoder->parameters()) online_params_.push_back(p);
  }
  for (auto* module :
       {static_cast<torch::nn::Module*>(m_.encoder.get()), static_cast<torch::nn::Module*>(m_.predictor.get()),
        static_cast<torch::nn::Module*>(m_.objective.get())}) {
    for (auto& p : module->parameters()) {
      if (p.requires_grad()) trained_params_.push_back(p);  // not the fixed sin-cos tables
    }
  }
  if (parallel_.group != nullptr && parallel_.group->size() > 1) {
    reducer_ = std::make_unique<dist::GradientReducer>(*parallel_.group, trained_params_, parallel_.bucket_bytes);
  }
  first_nonfinite_ = torch::full({}, -1, torch::TensorOptions().dtype(torch::kLong).device(device_));
}

StepMasks TrainStep::prepare_masks(int batch, int64_t it) {
  StepMasks m;
  m.sample = masks(batch, it);
  const auto& s = m.sample;
  const bool pinned = device_.is_cuda();
  m.context = host_indices(s.context, s.context_blocks, batch, s.context_length, pinned);
  m.target = host_indices(s.target, s.target_blocks, batch, s.target_length, pinned);
  return m;
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

StepForward TrainStep::forward(const torch::Tensor& batch_images, int64_t it, const StepMasks* prepared) {
  StepForward f;
  const auto B = static_cast<int>(batch_images.size(0));
  const StepMasks sampled = prepared != nullptr ? StepMasks{} : prepare_masks(B, it);
  const StepMasks& m = prepared != nullptr ? *prepared : sampled;
  const auto& s = m.sample;
  if (s.batch_size != B) {
    throw std::logic_error(fmt::format("masks for {} images given to a batch of {}", s.batch_size, B));
  }
  f.context_length = s.context_length;
  f.target_length = s.target_length;
  const auto ctx = per_block(m.context, device_);
  const auto tgt = per_block(m.target, device_);
  const auto images = batch_images.to(device_, /*non_blocking=*/true);

  sdk::ObjectiveInputs in;
  in.batch_size = B;
  {
    AutocastScope autocast(device_, precision_ == Precision::bf16);
    // The target branch first, as upstream (the EMA target, or the online encoder itself).
    if (m_.needs.target == sdk::TargetKind::online) {
      in.target_tokens = m_.target->forward(images, {});
    } else {
      torch::NoGradGuard no_grad;
      in.target_tokens = m_.target->forward(images, {});
    }
    in.context_tokens = m_.encoder->forward(images, ctx);
    f.prediction = m_.predictor->forward(in.context_tokens, ctx, tgt);
  }
  // Outside autocast: the objective works in fp32 whatever the forward passes ran in, as
  // upstream's autocast does on CUDA (layer_norm and smooth_l1_loss are on its fp32 list); CPU
  // autocast would leave them in bf16.
  in.predictions = f.prediction;
  in.context_masks = ctx;
  in.target_masks = tgt;
  sdk::StepInfo info;
  info.step = it;
  info.epoch = it / std::max<int64_t>(1, schedules_.iterations_per_epoch());
  info.total_steps = schedules_.total_steps();
  info.seed = seed_;
  info.rank = collective_.rank();
  info.world_size = collective_.world_size();
  collective_.set_step(it + 1);
  sdk::ObjectiveOutput out = m_.objective->forward(in, info, collective_);
  if (!out.loss.defined() || out.loss.numel() != 1) {
    throw std::runtime_error("objective returned no scalar loss");
  }
  f.loss = out.loss.reshape({});
  f.parts = std::move(out.parts);
  f.target_tokens = in.target_tokens;
  return f;
}

StepResult TrainStep::run(const torch::Tensor& batch_images, int64_t it, const StepMasks* masks) {
  StepResult r;
  // Upstream advances its schedulers before the step, counting from 1.
  r.lr = schedules_.lr_at(it + 1);
  r.weight_decay = schedules_.weight_decay_at(it + 1);
  set_schedule(optimizer_, r.lr, r.weight_decay);

  const StepForward f = forward(batch_images, it, masks);
  r.context_length = f.context_length;
  r.target_length = f.target_length;
  const torch::Tensor& loss = f.loss;
  if (reducer_) {
    reducer_->prepare(it + 1);  // zeroes the buckets that the gradients are slots of
  } else {
    optimizer_.zero_grad();
  }
  loss.backward();  // the reducer's hooks start the gradient all-reduces as backward goes
  if (reducer_) reducer_->finish();
  optimizer_.step();

  // EMA over all encoder parameters, after the optimizer step: target = m * target + (1 - m) * online.
  torch::NoGradGuard no_grad;
  if (m_.has_ema_target()) {
    r.momentum = schedules_.momentum_at(it);
    torch::_foreach_mul_(target_params_, r.momentum);
    torch::_foreach_add_(target_params_, online_params_, 1.0 - r.momentum);
  }

  // The loss as every rank will read it, kept on the device: with NCCL the all-reduce is queued
  // on the stream, and nothing here waits for it. NaN on one rank is NaN in the mean of all.
  r.loss_value = loss.detach().to(torch::kFloat64);
  std::vector<torch::Tensor> parts;
  for (const auto& [name, value] : f.parts) {
    r.part_names.push_back(name);
    parts.push_back(value.detach().reshape({}).to(torch::kFloat64));
  }
  if (!parts.empty()) r.part_values = torch::stack(parts);
  if (parallel_.group != nullptr && parallel_.group->size() > 1) {
    if (parts.empty()) {
      r.loss_value = parallel_.group->mean(r.loss_value, it + 1);
    } else {
      // One all-reduce for the loss and the parts: the loss's element is the same mean either way.
      const auto all = parallel_.group->average(torch::cat({r.loss_value.reshape({1}), r.part_values}), it + 1);
      r.loss_value = all[0];
      r.part_values = all.slice(0, 1);
    }
  }
  first_nonfinite_.masked_fill_(first_nonfinite_.lt(0).logical_and(r.loss_value.isfinite().logical_not()), it + 1);
  return r;
}

void TrainStep::read(StepResult& r) {
  std::vector<torch::Tensor> values{r.loss_value.reshape({1}), first_nonfinite_.to(torch::kFloat64).reshape({1})};
  if (r.part_values.defined()) values.push_back(r.part_values.reshape({-1}));
  const auto all = torch::cat(values).cpu();  // one synchronisation
  const double* v = all.data_ptr<double>();
  r.loss = v[0];
  r.parts.clear();
  for (size_t i = 0; i < r.part_names.size(); ++i) r.parts.emplace_back(r.part_names[i], v[2 + i]);
  const auto first = static_cast<int64_t>(v[1]);
  if (first >= 0) throw DivergedError(fmt::format("diverged at step {}", first));
}

}  // namespace jepa::train
