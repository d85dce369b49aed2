// bf16 autocast over a scope, on CPU or CUDA, through LibTorch 1.13's and 2.x's APIs alike.
#pragma once

#include <torch/types.h>

namespace jepa::train {

// While alive, ops on `device`'s kind run under autocast to bf16 (matrix products and
// convolutions in bf16, precision-sensitive ops in fp32, as PyTorch's autocast lists them).
// Disabled: does nothing. Restores the previous autocast state on exit, so scopes nest.
class AutocastScope {
 public:
  AutocastScope(torch::Device device, bool enabled);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  bool cuda_ = false;
  bool was_enabled_ = false;
  at::ScalarType old_dtype_ = at::kFloat;
};

// Whether autocast to bf16 is active for `device`'s kind on this thread (tests).
bool autocast_active(torch::Device device);

}  // namespace jepa::train
