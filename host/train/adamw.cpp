#include "train/adamw.hpp"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <cmath>
#include <memory>

namespace jepa::train {

namespace {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

// torch::optim::AdamW's key for a parameter's state, which save() and load() use too.
#if TORCH_VERSION_MAJOR >= 2
void* state_key(const torch::Tensor& p) {
  return p.unsafeGetTensorImpl();
}
#else
std::string state_key(const torch::Tensor& p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}
#endif

constexpr bool kHasFusedAdamW = TORCH_VERSION_MAJOR >= 2;

bool fused_device(c10::Device device) {
  return device.is_cpu() || device.is_cuda();
}

// One group's parameters that have a gradient, with their state.
struct GroupLists {
  std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
  std::vector<AdamWParamState*> states;
};

// The fused kernel takes one device and dtype per call and walks raw, dense storage.
bool fusable(const GroupLists& l) {
  if (!kHasFusedAdamW) return false;
  const auto& first = l.params.front();
  if (!fused_device(first.device()) || !at::isFloatingType(first.scalar_type())) return false;
  for (size_t i = 0; i < l.params.size(); ++i) {
    for (const torch::Tensor* t : {&l.params[i], &l.grads[i], &l.exp_avgs[i], &l.exp_avg_sqs[i]}) {
      if (t->device() != first.device() || t->scalar_type() != first.scalar_type() || !t->is_contiguous()) {
        return false;
      }
    }
  }
  return true;
}

// torch::optim::AdamW's arithmetic, one op per group instead of per parameter. The steps of a
// group can differ (a parameter skipped on a step without gradient), hence per-tensor scalars
// for the bias corrections.
void foreach_update(GroupLists& l, const AdamWOptions& o) {
  const auto [beta1, beta2] = o.betas();
  std::vector<at::Scalar> bias_correction2_sqrt;
  std::vector<at::Scalar> neg_step_size;
  for (auto* s : l.states) {
    s->step(s->step() + 1);
    const double bias_correction1 = 1 - std::pow(beta1, s->step());
    const double bias_correction2 = 1 - std::pow(beta2, s->step());
    bias_correction2_sqrt.emplace_back(std::sqrt(bias_correction2));
    neg_step_size.emplace_back(-o.lr() / bias_correction1);
  }
  if (o.weight_decay() != 0) at::_foreach_mul_(l.params, 1 - o.lr() * o.weight_decay());
  at::_foreach_mul_(l.exp_avgs, beta1);
  at::_foreach_add_(l.exp_avgs, l.grads, 1 - beta1);
  at::_foreach_mul_(l.exp_avg_sqs, beta2);
  at::_foreach_addcmul_(l.exp_avg_sqs, l.grads, l.grads, 1 - beta2);
  auto denom = at::_foreach_sqrt(l.exp_avg_sqs);
  at::_foreach_div_(denom, bias_correction2_sqrt);
  at::_foreach_add_(denom, o.eps());
  at::_foreach_addcdiv_(l.params, l.exp_avgs, denom, neg_step_size);
}

}  // namespace

std::string MultiTensorAdamW::implementation(c10::Device device) {
  return kHasFusedAdamW && fused_device(device) ? "fused" : "foreach";
}

torch::Tensor MultiTensorAdamW::step(LossClosure closure) {
  for (auto& group : param_groups_) {
    if (static_cast<AdamWOptions&>(group.options()).amsgrad()) return torch::optim::AdamW::step(std::move(closure));
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<AdamWOptions&>(group.options());
    GroupLists l;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(!p.grad().is_sparse(), "AdamW does not support sparse gradients");
      auto& slot = state_[state_key(p)];
      if (!slot) {
        auto s = std::make_unique<AdamWParamState>();
        s->step(0);
        s->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        s->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(s);
      }
      auto& s = static_cast<AdamWParamState&>(*slot);
      l.params.push_back(p);
      l.grads.push_back(p.grad());
      l.exp_avgs.push_back(s.exp_avg());
      l.exp_avg_sqs.push_back(s.exp_avg_sq());
      l.states.push_back(&s);
    }
    if (l.params.empty()) continue;
    if (!fusable(l)) {
      foreach_update(l, o);
      continue;
    }
#if TORCH_VERSION_MAJOR >= 2
    std::vector<torch::Tensor> steps;
    steps.reserve(l.params.size());
    for (size_t i = 0; i < l.params.size(); ++i) {
      auto* s = l.states[i];
      auto& d = device_steps_[l.params[i].unsafeGetTensorImpl()];
      if (d.host != s->step() || !d.value.defined() || d.value.device() != l.params[i].device()) {
        // A fill on the device, not a copy that would wait for it.
        d.value = at::full({}, static_cast<double>(s->step()), l.params[i].options().dtype(at::kFloat));
      }
      steps.push_back(d.value);
      s->step(s->step() + 1);
      d.host = s->step();
    }
    // The kernel reads the step, it does not advance it (PyTorch's fused path adds 1 first).
    at::_foreach_add_(steps, 1);
    const auto [beta1, beta2] = o.betas();
    at::_fused_adamw_(l.params, l.grads, l.exp_avgs, l.exp_avg_sqs, at::TensorList(), steps, o.lr(), beta1, beta2,
                      o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
#endif
  }
  return loss;
}

std::string optimizer_impl(const torch::optim::AdamW& optimizer, c10::Device device) {
  if (dynamic_cast<const MultiTensorAdamW*>(&optimizer) == nullptr) return "per-parameter";
  return MultiTensorAdamW::implementation(device);
}

}  // namespace jepa::train
