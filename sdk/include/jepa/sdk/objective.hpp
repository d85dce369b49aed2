// Objectives: the loss a run minimises, and what it needs the host to build for it (C++ interface
// behind the build fingerprint gate, as encoders). Added in ABI 1.1; older plugins keep loading.
//
// Per step the host runs the context encoder on the context tokens, the predictor on its output,
// and the target branch the objective declared on the full image, then calls forward() outside
// any autocast. The objective returns a scalar loss and named parts; the host does the backward
// pass, the optimizer step (the objective's own parameters included) and, for an EMA target, the
// momentum update with [optimization] ema.
#pragma once

#include <jepa/sdk/abi.h>
#include <jepa/sdk/params.hpp>
#include <jepa/sdk/predictor.hpp>

#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace jepa::sdk {

// Where the target tokens come from.
enum class TargetKind : int32_t {
  ema = 0,              // an EMA copy of the encoder (I-JEPA), no gradient: the host builds it and
                        // updates it after every optimizer step with the [optimization] ema schedule
  online = 1,           // the online encoder itself on the full image, with gradient (LeJEPA)
  online_detached = 2,  // the online encoder on the full image without gradient (stop-gradient)
};

struct ObjectiveNeeds {
  TargetKind target = TargetKind::ema;
};

// The step being computed. `seed` is the run's seed: identical on every rank, so that anything
// drawn from (seed, step) (SIGReg's directions) is too.
struct StepInfo {
  int64_t step = 0;  // 0-based iteration
  int64_t epoch = 0;
  int64_t total_steps = 0;
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
};

// Statistics over every rank's batch. Every rank must call mean() with the same shapes in the
// same order within a step (it is a collective).
class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // The mean over ranks of `value` (any shape, on the run's device), differentiable: the loss of
  // a statistic of the global batch gets on each rank the gradient with respect to that rank's
  // own samples, as one process holding the whole batch would. On one process: `value` itself.
  virtual torch::Tensor mean(const torch::Tensor& value) = 0;
};

struct ObjectiveInputs {
  int64_t batch_size = 0;  // B, this rank's images
  // The context encoder on each context mask, concatenated along the batch: [n_ctx * B, K_ctx, D],
  // with gradient (bf16 under bf16 autocast).
  torch::Tensor context_tokens;
  // The predictor's outputs for every target block, mask-major: [n_tgt * B, K_tgt, D], with gradient.
  torch::Tensor predictions;
  // The declared target branch on the whole image, as the encoder returns it (after its final
  // norm, before anything else): [B, N, D]; with gradient only for TargetKind::online.
  torch::Tensor target_tokens;
  std::vector<torch::Tensor> context_masks;  // n_ctx x [B, K_ctx] patch indices, on the device
  std::vector<torch::Tensor> target_masks;   // n_tgt x [B, K_tgt]
};

struct ObjectiveOutput {
  torch::Tensor loss;  // scalar, fp32, with gradient
  // Named, unweighted terms (no gradient needed), logged as train/loss/<name> (averaged over ranks).
  std::vector<std::pair<std::string, torch::Tensor>> parts;
};

class Objective : public torch::nn::Module {
 public:
  static constexpr int32_t kind = JEPA_KIND_OBJECTIVE;
  using interface_type = Objective;
  ~Objective() override = default;

  virtual ObjectiveNeeds needs() const = 0;

  // Called once by the host after create() with the encoder's shape, before the optimizer exists:
  // build any parameters here (a projector); they are trained, checkpointed and exported with
  // the rest. Register them as submodules/parameters/buffers of this module.
  virtual void bind(const EncoderShape& encoder) { (void)encoder; }

  virtual ObjectiveOutput forward(const ObjectiveInputs& inputs, const StepInfo& step, Collective& collective) = 0;
};

}  // namespace jepa::sdk
