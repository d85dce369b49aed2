#include "train/models.hpp"

#include "train/adamw.hpp"

#include "loader/cxx_component.hpp"

#include <ATen/Context.h>

#include <mutex>

namespace jepa::train {

bool Models::objective_has_state() const {
  return !objective->parameters(true).empty() || !objective->buffers(true).empty();
}

Models build_models(const config::Experiment& e, torch::Device device) {
  Models m;
  m.objective = loader::create_component<sdk::Objective>(*e.objective.component, e.objective.params);
  m.needs = m.objective->needs();
  m.encoder = loader::create_component<sdk::Encoder>(*e.encoder.component, e.encoder.params);
  if (m.has_ema_target()) {
    m.target = loader::create_component<sdk::Encoder>(*e.encoder.component, e.encoder.params);
    {
      torch::NoGradGuard no_grad;
      const auto src = m.encoder->named_parameters(true);
      for (auto& p : m.target->named_parameters(true)) p.value().copy_(src[p.key()]);
      const auto src_buffers = m.encoder->named_buffers(true);
      for (auto& b : m.target->named_buffers(true)) b.value().copy_(src_buffers[b.key()]);
    }
    for (auto& p : m.target->parameters()) p.set_requires_grad(false);
  } else {
    m.target = m.encoder;
  }
  m.predictor = loader::create_component<sdk::Predictor>(*e.predictor.component, e.predictor.params);
  const auto grid = m.encoder->patch_grid();
  const sdk::EncoderShape shape{m.encoder->embed_dim(), m.encoder->num_heads(), grid[0], grid[1]};
  m.predictor->bind(shape);
  m.objective->bind(shape);
  m.encoder->to(device);
  m.target->to(device);
  m.predictor->to(device);
  m.objective->to(device);
  return m;
}

std::shared_ptr<sdk::Encoder> initial_encoder(const config::Experiment& e, torch::Device device) {
  auto gen = at::globalContext().defaultGenerator(torch::kCPU);
  torch::Tensor saved;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    saved = gen.get_state();
  }
  torch::manual_seed(e.seed);  // as run_experiment does before build_models
  auto encoder = loader::create_component<sdk::Encoder>(*e.encoder.component, e.encoder.params);
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(saved);
  }
  for (auto& p : encoder->parameters()) p.set_requires_grad(false);
  encoder->to(device);
  encoder->eval();
  return encoder;
}

int64_t count_trainable(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.requires_grad() ? p.numel() : 0;
  return n;
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(Models& m, double lr, double wd) {
  std::vector<torch::Tensor> groups[4];
  auto split = [&](torch::nn::Module& mod, int decay_group, int no_decay_group) {
    for (const auto& p : mod.named_parameters(true)) {
      const bool no_decay = p.key().find("bias") != std::string::npos || p.value().dim() == 1;
      groups[no_decay ? no_decay_group : decay_group].push_back(p.value());
    }
  };
  split(*m.encoder, 0, 2);
  split(*m.predictor, 1, 3);
  split(*m.objective, 1, 3);
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (int g = 0; g < 4; ++g) {
    auto opts = std::make_unique<torch::optim::AdamWOptions>(lr);
    opts->betas({0.9, 0.999}).eps(1e-8).weight_decay(g < 2 ? wd : 0.0);
    param_groups.emplace_back(groups[g], std::move(opts));
  }
  return std::make_unique<MultiTensorAdamW>(param_groups, torch::optim::AdamWOptions(lr));
}

}  // namespace jepa::train
