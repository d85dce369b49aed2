// Applying patch-index masks to token tensors, as upstream's src/masks/utils.py. Shared by the
// host (targets) and by encoder/predictor plugins (context), so both sides gather identically.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace jepa::sdk {

// Keeps, for each index tensor [B, K] in `masks`, the tokens it names from x [B, N, D];
// concatenated along the batch: [len(masks) * B, K, D].
inline torch::Tensor apply_masks(const torch::Tensor& x, const std::vector<torch::Tensor>& masks) {
  std::vector<torch::Tensor> parts;
  parts.reserve(masks.size());
  for (const auto& m : masks) parts.push_back(torch::gather(x, 1, m.unsqueeze(-1).expand({-1, -1, x.size(-1)})));
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

// For each chunk of B rows, `repeat` copies of it (upstream's repeat_interleave_batch).
inline torch::Tensor repeat_interleave_batch(const torch::Tensor& x, int64_t B, int64_t repeat) {
  if (repeat == 1) return x;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0) / B; ++i) {
    const auto chunk = x.slice(0, i * B, (i + 1) * B);
    for (int64_t r = 0; r < repeat; ++r) parts.push_back(chunk);
  }
  return torch::cat(parts, 0);
}

}  // namespace jepa::sdk
