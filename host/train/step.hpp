// One I-JEPA optimisation step, as upstream's train_step. Shared by the trainer and the
// benchmark so that what is measured is what trains.
#pragma once

#include "distributed/group.hpp"
#include "loader/masking_strategy.hpp"
#include "train/models.hpp"
#include "train/precision.hpp"
#include "train/schedules.hpp"

#include <torch/optim/adamw.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

namespace jepa::train {

struct DivergedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct StepResult {
  double loss = 0;
  double lr = 0;
  double weight_decay = 0;
  double momentum = 0;
  int context_length = 0;
  int target_length = 0;
};

// One rank's part in a data-parallel step.
struct DataParallel {
  dist::Group* group = nullptr;  // none: a single process
  // false: this rank draws masks for its own batch with a seed mixed with its rank (upstream).
  // true: every rank draws the global batch's masks (world x B) and keeps the rows of its images,
  // which the loader deals out as DistributedSampler: image i of rank r is row r + world * i.
  bool global_masks = false;
  int64_t bucket_bytes = 25 << 20;  // gradients per all-reduce
};

// The forward half of a step: what the loss is made of.
struct StepForward {
  torch::Tensor loss;        // scalar, fp32
  torch::Tensor prediction;  // predictor output [npred*B, K, D]: bf16 under bf16 autocast
  torch::Tensor target;      // layer-normed target tokens [npred*B, K, D], fp32, no gradient
  int context_length = 0;
  int target_length = 0;
};

class TrainStep {
 public:
  TrainStep(Models& models, torch::optim::AdamW& optimizer, loader::MaskingStrategy& masking,
            const Schedules& schedules, uint64_t seed, torch::Device device, Precision precision = Precision::fp32,
            DataParallel parallel = {});

  // bf16: both forward passes run under bf16 autocast (upstream's use_bfloat16) while the
  // weights, the optimizer state, the target's layer norm, the loss and the EMA stay fp32.
  // images [B, C, H, W] on any device; `it` is the 0-based iteration. Throws DivergedError on a
  // non-finite loss (before it touches the weights). With several ranks the loss is the mean over
  // ranks (so every rank takes the same decision) and gradients are averaged before the update;
  // a peer that fails throws dist::PeerError.
  StepResult run(const torch::Tensor& images, int64_t it);

  // The forward passes and the loss of iteration `it`, as run() computes them, without touching
  // the schedules, the gradients or the weights.
  StepForward forward(const torch::Tensor& images, int64_t it);

  // The masks of this rank's batch of B images at iteration `it`.
  sdk::MaskSample masks(int batch, int64_t it);

 private:
  Models& m_;
  torch::optim::AdamW& optimizer_;
  loader::MaskingStrategy& masking_;
  const Schedules& schedules_;
  uint64_t seed_;
  torch::Device device_;
  Precision precision_;
  DataParallel parallel_;
  std::array<int64_t, 2> grid_;
  std::vector<torch::Tensor> target_params_;
  std::vector<torch::Tensor> online_params_;
  std::vector<torch::Tensor> trained_params_;  // encoder and predictor parameters that learn
  std::unique_ptr<dist::GradientReducer> reducer_;
};

}  // namespace jepa::train
