// One I-JEPA optimisation step, as upstream's train_step. Shared by the trainer and the
// benchmark so that what is measured is what trains.
#pragma once

#include "distributed/group.hpp"
#include "loader/masking_strategy.hpp"
#include "train/collective.hpp"
#include "train/models.hpp"
#include "train/precision.hpp"
#include "train/schedules.hpp"

#include <torch/optim/adamw.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace jepa::train {

struct DivergedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct StepResult {
  // The loss stays on the device until read() (a host-device synchronisation): the trainer reads
  // it on logging steps on CUDA, every step on the CPU where reading costs nothing.
  torch::Tensor loss_value;   // scalar; the mean over ranks with several
  torch::Tensor part_values;  // the objective's parts [n], likewise (undefined when it has none)
  std::vector<std::string> part_names;
  double loss = 0;                                    // set by TrainStep::read()
  std::vector<std::pair<std::string, double>> parts;  // set by read(): logged as train/loss/<name>
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

// A batch's masks made ready off the training thread (TrainStep::prepare_masks, called ahead of
// the step by the prefetcher): the sample and its index tensors [blocks, B, length] on the CPU, in
// pinned memory when the run is on CUDA so that their copies do not block.
struct StepMasks {
  sdk::MaskSample sample;
  torch::Tensor context;
  torch::Tensor target;
};

// The forward half of a step: what the loss is made of.
struct StepForward {
  torch::Tensor loss;                                        // scalar, fp32: the objective's
  std::vector<std::pair<std::string, torch::Tensor>> parts;  // the objective's named terms
  torch::Tensor prediction;     // predictor output [npred*B, K, D]: bf16 under bf16 autocast
  torch::Tensor target_tokens;  // the declared target branch on the whole image [B, N, D]
  int context_length = 0;
  int target_length = 0;
};

class TrainStep {
 public:
  TrainStep(Models& models, torch::optim::AdamW& optimizer, loader::MaskingStrategy& masking,
            const Schedules& schedules, uint64_t seed, torch::Device device, Precision precision = Precision::fp32,
            DataParallel parallel = {});

  // bf16: the forward passes run under bf16 autocast (upstream's use_bfloat16) while the
  // weights, the optimizer state, the objective (the target's layer norm, the loss) and the EMA
  // stay fp32. The objective (models.objective) makes the loss; the EMA update runs only when it
  // declared an EMA target.
  // images [B, C, H, W] on any device (copied without blocking when pinned); `it` is the 0-based
  // iteration; `masks` as prepare_masks(B, it) made them, or sampled here when null. Nothing in
  // the step waits for the device: the loss is read later by read(), after the update, as
  // upstream's float(loss). With several ranks gradients are averaged during backward and the
  // loss is averaged over ranks on the device; a peer that fails throws dist::PeerError.
  StepResult run(const torch::Tensor& images, int64_t it, const StepMasks* masks = nullptr);

  // Reads the step's loss to the host (one synchronisation). Throws DivergedError naming the
  // first step whose loss was not finite, even when that step was not read itself (the device
  // keeps it); every rank reads the same averaged loss, so every rank throws at the same read.
  void read(StepResult& r);

  // The forward passes and the loss of iteration `it`, as run() computes them, without touching
  // the schedules, the gradients or the weights.
  StepForward forward(const torch::Tensor& images, int64_t it, const StepMasks* masks = nullptr);

  // The masks of this rank's batch of B images at iteration `it`. Thread-safe.
  sdk::MaskSample masks(int batch, int64_t it);
  // The same, with their index tensors on the CPU (pinned for a CUDA run). Thread-safe.
  StepMasks prepare_masks(int batch, int64_t it);

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
  std::vector<torch::Tensor> trained_params_;  // encoder, predictor and objective parameters that learn
  RankCollective collective_;
  std::unique_ptr<dist::GradientReducer> reducer_;
  torch::Tensor first_nonfinite_;  // on the device: the first step whose loss was not finite, or -1
};

}  // namespace jepa::train
