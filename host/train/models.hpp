// The three networks of a run and their optimizer, built from the experiment's plugins.
#pragma once

#include "config/experiment.hpp"

#include <torch/optim/adamw.h>
#include <jepa/sdk/encoder.hpp>
#include <jepa/sdk/objective.hpp>
#include <jepa/sdk/predictor.hpp>

#include <memory>

namespace jepa::train {

struct Models {
  std::shared_ptr<sdk::Encoder> encoder;
  // What the objective's target tokens come from, and what evaluations and exports read as the
  // "target encoder": the EMA copy when the objective declares one (no gradient), else the online
  // encoder itself (the same object: nothing more is built, nothing is updated by momentum).
  std::shared_ptr<sdk::Encoder> target;
  std::shared_ptr<sdk::Predictor> predictor;
  std::shared_ptr<sdk::Objective> objective;
  sdk::ObjectiveNeeds needs;

  bool has_ema_target() const { return needs.target == sdk::TargetKind::ema; }
  // Whether the objective owns parameters or buffers (checkpointed and exported only then, so
  // that runs of objectives without any keep their checkpoints' and exports' layout).
  bool objective_has_state() const;
};

// The target, when declared as EMA, is a second instance of the encoder plugin with the weights
// copied: the host never copies plugin objects through C++ copy constructors. The objective is
// created first (it builds nothing until bind), so the encoder and predictor draw the same
// random numbers whatever the objective.
Models build_models(const config::Experiment& e, torch::Device device);

// The encoder exactly as build_models initialised it for a run of `e` (seeded with e.seed, created
// first): the random-init baseline of evaluations. Restores the global generator's state.
std::shared_ptr<sdk::Encoder> initial_encoder(const config::Experiment& e, torch::Device device);

// Upstream's four AdamW groups (betas 0.9/0.999, eps 1e-8): weight decay only on parameters with
// ndim > 1 and no "bias" in the name, for the encoder and the predictor; an objective's own
// parameters (a projector) join the predictor's groups, after its.
std::unique_ptr<torch::optim::AdamW> make_optimizer(Models& m, double lr, double weight_decay);

int64_t count_trainable(torch::nn::Module& m);

}  // namespace jepa::train
