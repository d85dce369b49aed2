// MultiTensorAdamW against torch::optim::AdamW: same parameters and state over 20 steps with four
// groups of different lr, weight decay and betas, parameters that miss their gradient on some
// steps, schedule changes, and save/load in both directions.
#include "train/adamw.hpp"

#include <gtest/gtest.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <sstream>

namespace {

using jepa::train::MultiTensorAdamW;
using torch::optim::AdamW;
using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

constexpr int kGroups = 4;
constexpr double kLr[kGroups] = {1e-2, 3e-3, 2e-2, 5e-3};
constexpr double kWd[kGroups] = {0.1, 0.04, 0.0, 0.3};

// Four groups of 1-D and 2-D parameters, the same values on every call.
std::vector<std::vector<torch::Tensor>> make_params() {
  torch::manual_seed(7);
  const std::vector<std::vector<int64_t>> shapes{{8, 5}, {5}, {3, 4, 2}};
  std::vector<std::vector<torch::Tensor>> groups(kGroups);
  for (int g = 0; g < kGroups; ++g) {
    for (const auto& shape : shapes) groups[g].push_back(torch::randn(shape).requires_grad_(true));
  }
  return groups;
}

std::vector<torch::optim::OptimizerParamGroup> make_groups(const std::vector<std::vector<torch::Tensor>>& params) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (int g = 0; g < kGroups; ++g) {
    auto o = std::make_unique<AdamWOptions>(kLr[g]);
    o->weight_decay(kWd[g]).eps(g == 3 ? 1e-6 : 1e-8);
    o->betas(g == 2 ? std::make_tuple(0.8, 0.99) : std::make_tuple(0.9, 0.999));
    groups.emplace_back(params[g], std::move(o));
  }
  return groups;
}

// The gradients of step `step`, the same for both optimizers; parameter k of group g has none
// when (step + g + k) % 4 == 0, so steps differ inside a group.
void set_grads(const std::vector<std::vector<torch::Tensor>>& params, int step) {
  auto gen = at::detail::createCPUGenerator(1000 + step);
  for (int g = 0; g < kGroups; ++g) {
    for (size_t k = 0; k < params[g].size(); ++k) {
      auto& p = params[g][k];
      const auto grad = at::randn(p.sizes(), gen, torch::kFloat32) * (1.0 + g);
      if ((step + g + static_cast<int>(k)) % 4 == 0) {
        p.mutable_grad() = torch::Tensor();
      } else {
        p.mutable_grad() = grad;
      }
    }
  }
}

// A schedule, as TrainStep sets lr and weight decay of every group each step.
void set_schedule(torch::optim::Optimizer& opt, int step) {
  for (size_t g = 0; g < opt.param_groups().size(); ++g) {
    auto& o = static_cast<AdamWOptions&>(opt.param_groups()[g].options());
    o.lr(kLr[g] * (1.0 + 0.1 * std::sin(step)));
    o.weight_decay(kWd[g] * (1.0 + 0.01 * step));
  }
}

const AdamWParamState* state_of(torch::optim::Optimizer& opt, const torch::Tensor& p) {
#if TORCH_VERSION_MAJOR >= 2
  const auto it = opt.state().find(p.unsafeGetTensorImpl());
#else
  const auto it = opt.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
#endif
  return it == opt.state().end() ? nullptr : static_cast<const AdamWParamState*>(it->second.get());
}

void expect_same(const std::vector<std::vector<torch::Tensor>>& ref_params, torch::optim::Optimizer& ref,
                 const std::vector<std::vector<torch::Tensor>>& params, torch::optim::Optimizer& opt, int step) {
  for (int g = 0; g < kGroups; ++g) {
    for (size_t k = 0; k < params[g].size(); ++k) {
      SCOPED_TRACE(testing::Message() << "step " << step << ", group " << g << ", parameter " << k);
      EXPECT_TRUE(torch::allclose(params[g][k], ref_params[g][k], 1e-5, 1e-7))
          << (params[g][k] - ref_params[g][k]).abs().max().item<double>();
      const auto* a = state_of(ref, ref_params[g][k]);
      const auto* b = state_of(opt, params[g][k]);
      ASSERT_EQ(a == nullptr, b == nullptr);
      if (a == nullptr) continue;
      EXPECT_EQ(a->step(), b->step());
      // The fused kernel moves exp_avg with lerp, not mul and add: rounding of gradients up to ~10.
      EXPECT_TRUE(torch::allclose(a->exp_avg(), b->exp_avg(), 1e-5, 1e-6))
          << (a->exp_avg() - b->exp_avg()).abs().max().item<double>();
      EXPECT_TRUE(torch::allclose(a->exp_avg_sq(), b->exp_avg_sq(), 1e-5, 1e-8))
          << (a->exp_avg_sq() - b->exp_avg_sq()).abs().max().item<double>();
    }
  }
}

void run_steps(const std::vector<std::vector<torch::Tensor>>& params, torch::optim::Optimizer& opt, int from, int to) {
  for (int step = from; step < to; ++step) {
    set_schedule(opt, step);
    set_grads(params, step);
    opt.step();
  }
}

std::string saved(torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load(torch::optim::Optimizer& opt, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  opt.load(archive);
}

TEST(MultiTensorAdamW, MatchesLibTorchAdamWOverTwentySteps) {
  auto ref_params = make_params();
  auto params = make_params();
  AdamW ref(make_groups(ref_params), AdamWOptions(1e-3));
  MultiTensorAdamW opt(make_groups(params), AdamWOptions(1e-3));
  for (int step = 0; step < 20; ++step) {
    run_steps(ref_params, ref, step, step + 1);
    run_steps(params, opt, step, step + 1);
    expect_same(ref_params, ref, params, opt, step);
  }
  // Every parameter moved: the comparison is not of two optimizers that both do nothing.
  const auto initial = make_params();
  for (int g = 0; g < kGroups; ++g) {
    for (size_t k = 0; k < params[g].size(); ++k)
      EXPECT_GT((params[g][k] - initial[g][k]).abs().max().item<double>(), 1e-3);
  }
}

TEST(MultiTensorAdamW, StateSavedByEitherResumesInTheOther) {
  auto ref_params = make_params();
  auto params = make_params();
  AdamW ref(make_groups(ref_params), AdamWOptions(1e-3));
  MultiTensorAdamW opt(make_groups(params), AdamWOptions(1e-3));
  run_steps(ref_params, ref, 0, 10);
  run_steps(params, opt, 0, 10);

  // LibTorch's state into a fresh MultiTensorAdamW (a resume), and ours into a fresh AdamW.
  auto resumed_params = make_params();
  auto resumed_ref_params = make_params();
  {
    torch::NoGradGuard no_grad;
    for (int g = 0; g < kGroups; ++g) {
      for (size_t k = 0; k < params[g].size(); ++k) {
        resumed_params[g][k].copy_(ref_params[g][k]);
        resumed_ref_params[g][k].copy_(params[g][k]);
      }
    }
  }
  MultiTensorAdamW resumed(make_groups(resumed_params), AdamWOptions(1e-3));
  load(resumed, saved(ref));
  AdamW resumed_ref(make_groups(resumed_ref_params), AdamWOptions(1e-3));
  load(resumed_ref, saved(opt));

  run_steps(ref_params, ref, 10, 20);
  run_steps(resumed_params, resumed, 10, 20);
  expect_same(ref_params, ref, resumed_params, resumed, 20);
  run_steps(params, opt, 10, 20);
  run_steps(resumed_ref_params, resumed_ref, 10, 20);
  expect_same(resumed_ref_params, resumed_ref, params, opt, 20);
}

TEST(MultiTensorAdamW, ReloadingOlderStateRewindsTheStepCount) {
  // The fused path keeps a device copy of each step count; loading a checkpoint of an earlier
  // step into the same optimizer must not continue from the later count.
  auto ref_params = make_params();
  auto params = make_params();
  AdamW ref(make_groups(ref_params), AdamWOptions(1e-3));
  MultiTensorAdamW opt(make_groups(params), AdamWOptions(1e-3));
  run_steps(ref_params, ref, 0, 5);
  run_steps(params, opt, 0, 5);
  const std::string at5 = saved(opt);
  std::vector<torch::Tensor> weights_at5;
  for (auto& group : params) {
    for (auto& p : group) weights_at5.push_back(p.detach().clone());
  }
  run_steps(params, opt, 5, 15);
  load(opt, at5);
  {
    torch::NoGradGuard no_grad;
    size_t i = 0;
    for (auto& group : params) {
      for (auto& p : group) p.copy_(weights_at5[i++]);
    }
  }
  run_steps(ref_params, ref, 5, 20);
  run_steps(params, opt, 5, 20);
  expect_same(ref_params, ref, params, opt, 20);
}

TEST(MultiTensorAdamW, NamesItsPath) {
  EXPECT_EQ(MultiTensorAdamW::implementation(torch::kCPU), TORCH_VERSION_MAJOR >= 2 ? "fused" : "foreach");
  auto params = make_params();
  AdamW plain(make_groups(params), AdamWOptions(1e-3));
  EXPECT_EQ(jepa::train::optimizer_impl(plain, torch::kCPU), "per-parameter");
}

}  // namespace
