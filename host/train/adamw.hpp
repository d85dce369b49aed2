// AdamW with the update of a whole parameter group in a few multi-tensor kernels instead of
// LibTorch's ~9 eager ops per parameter: the ATen fused kernel where LibTorch has it (2.x, CPU
// and CUDA), foreach ops otherwise (1.13). Same arithmetic as torch::optim::AdamW within fp32
// rounding, and the same state: step, exp_avg and exp_avg_sq in AdamWParamState, so save(),
// load() and the checkpoint format are torch::optim::AdamW's.
#pragma once

#include <torch/optim/adamw.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace jepa::train {

class MultiTensorAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  // Parameters without a gradient are skipped (their step does not advance), as LibTorch does.
  // amsgrad falls back to torch::optim::AdamW::step().
  torch::Tensor step(LossClosure closure = nullptr) override;

  // "fused" or "foreach": the path step() takes for parameters on `device`.
  static std::string implementation(c10::Device device);

 private:
  // The fused kernel reads the step count from a float32 tensor on the parameter's device. It is
  // advanced on the device each step; `host` is the AdamWParamState step it mirrors, so a load()
  // that changed the state (resume) is noticed and the tensor rebuilt, without reading it back.
  struct DeviceStep {
    int64_t host = -1;
    torch::Tensor value;
  };
  std::unordered_map<const void*, DeviceStep> device_steps_;
};

// What make_optimizer's optimizer runs for parameters on `device` ("fused", "foreach"), or
// "per-parameter" for a plain torch::optim::AdamW: stored in the run's environment.
std::string optimizer_impl(const torch::optim::AdamW& optimizer, c10::Device device);

}  // namespace jepa::train
