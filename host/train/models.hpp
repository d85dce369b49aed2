// The three networks of a run and their optimizer, built from the experiment's plugins.
#pragma once

#include "config/experiment.hpp"

#include <torch/optim/adamw.h>
#include <jepa/sdk/encoder.hpp>
#include <jepa/sdk/predictor.hpp>

#include <memory>

namespace jepa::train {

struct Models {
  std::shared_ptr<sdk::Encoder> encoder;
  std::shared_ptr<sdk::Encoder> target;  // EMA of the encoder, no gradient
  std::shared_ptr<sdk::Predictor> predictor;
};

// The target is a second instance of the encoder plugin with the weights copied: the host never
// copies plugin objects through C++ copy constructors.
Models build_models(const config::Experiment& e, torch::Device device);

// The encoder exactly as build_models initialised it for a run of `e` (seeded with e.seed, created
// first): the random-init baseline of evaluations. Restores the global generator's state.
std::shared_ptr<sdk::Encoder> initial_encoder(const config::Experiment& e, torch::Device device);

// Upstream's four AdamW groups (betas 0.9/0.999, eps 1e-8): weight decay only on parameters with
// ndim > 1 and no "bias" in the name, for the encoder and the predictor.
std::unique_ptr<torch::optim::AdamW> make_optimizer(Models& m, double lr, double weight_decay);

int64_t count_trainable(torch::nn::Module& m);

}  // namespace jepa::train
