// Predictors: map context tokens to predictions for every target block (C++ interface).
#pragma once

#include <jepa/sdk/abi.h>
#include <jepa/sdk/params.hpp>

#include <torch/nn/module.h>

#include <cstdint>
#include <vector>

namespace jepa::sdk {

// What the host tells a predictor about the encoder it serves, before the first forward.
struct EncoderShape {
  int64_t embed_dim = 0;
  int64_t num_heads = 0;
  int64_t grid_height = 0;
  int64_t grid_width = 0;
};

class Predictor : public torch::nn::Module {
 public:
  static constexpr int32_t kind = JEPA_KIND_PREDICTOR;
  using interface_type = Predictor;
  ~Predictor() override = default;

  // Called once by the host after create() with the encoder's shape; builds the layers.
  virtual void bind(const EncoderShape& encoder) = 0;

  // context_tokens [len(context) * B, K_ctx, D]; context / targets: lists of [B, K] indices.
  // Returns predictions [len(targets) * B, K_tgt, D], mask-major as upstream.
  virtual torch::Tensor forward(const torch::Tensor& context_tokens, const std::vector<torch::Tensor>& context,
                                const std::vector<torch::Tensor>& targets) = 0;
};

}  // namespace jepa::sdk
