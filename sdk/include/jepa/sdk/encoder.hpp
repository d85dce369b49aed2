// Encoders: C++ interface carrying torch::Tensor and autograd, so it sits behind the build
// fingerprint gate (same LibTorch, CUDA/cpu, C++ ABI, compiler and standard as the host).
#pragma once

#include <jepa/sdk/abi.h>
#include <jepa/sdk/params.hpp>

#include <torch/nn/module.h>

#include <array>
#include <cstdint>
#include <vector>

namespace jepa::sdk {

class Encoder : public torch::nn::Module {
 public:
  static constexpr int32_t kind = JEPA_KIND_ENCODER;
  using interface_type = Encoder;
  ~Encoder() override = default;

  // images [B, C, H, W]. With `keep` empty: all patch tokens [B, N, D]. Otherwise each entry is
  // a [B, K] index tensor applied after the positional embedding, and the kept tokens of all
  // entries are concatenated along the batch: [len(keep) * B, K, D] (as upstream's apply_masks).
  virtual torch::Tensor forward(const torch::Tensor& images, const std::vector<torch::Tensor>& keep) = 0;

  // Outputs of the last `n` blocks, each [B, N, D], the last one after the final norm
  // (evaluators that concatenate the last layers use this).
  virtual std::vector<torch::Tensor> forward_last_layers(const torch::Tensor& images, int64_t n) = 0;

  virtual int64_t embed_dim() const = 0;
  virtual int64_t num_heads() const = 0;
  virtual int64_t depth() const = 0;
  // Patch grid (rows, cols) for the configured image and patch size.
  virtual std::array<int64_t, 2> patch_grid() const = 0;
};

}  // namespace jepa::sdk
