// Average-pooled features of the frozen target encoder, shared by the evaluators so that every
// probe (linear, kNN, low-shot, collapse monitor) measures the same representation: each block's
// patch tokens are averaged and the last N blocks' averages concatenated (the paper's transfer
// recipe uses N = 4).
#pragma once

#include <jepa/sdk/evaluator.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::evaluators {

struct PooledFeatures {
  torch::Tensor x;  // [n, last_layers * D], float32, CPU
  torch::Tensor y;  // [n], int64, CPU; empty when labels were not asked for
};

struct PoolingOptions {
  int64_t last_layers = 1;  // pool and concatenate the outputs of the last N blocks
  int64_t batch = 256;      // images per encoder call, bounds the encoder's activation memory
  bool labels = true;       // false for label-free monitors: the labels of a batch are not read
};

// How many images of `split` an evaluator uses: the first `limit` (limit <= 0: all of them).
inline int64_t limited_size(const sdk::EvalInput& in, sdk::Split split, int64_t limit) {
  const int64_t n = in.size(split);
  return limit > 0 ? std::min(n, limit) : n;
}

// Features (and labels) of images [0, limited_size(limit)) of `split`. An empty split gives
// x = [0, 0] and y = [0], so callers check size(0) rather than defined().
inline PooledFeatures extract_pooled(const sdk::EvalInput& in, sdk::Split split, int64_t limit,
                                     const PoolingOptions& options) {
  if (options.last_layers < 1 || options.batch < 1) {
    throw std::invalid_argument("pooled features need last_layers >= 1 and a batch >= 1");
  }
  const int64_t n = limited_size(in, split, limit);
  std::vector<torch::Tensor> xs;
  std::vector<torch::Tensor> ys;
  torch::NoGradGuard no_grad;
  for (int64_t begin = 0; begin < n; begin += options.batch) {
    const int64_t end = std::min(n, begin + options.batch);
    auto [images, labels] = in.batch(split, begin, end);
    const auto layers = in.encode(images, options.last_layers);
    std::vector<torch::Tensor> pooled;
    pooled.reserve(layers.size());
    for (const auto& l : layers) pooled.push_back(l.mean(1).to(torch::kCPU, torch::kFloat32));
    xs.push_back(torch::cat(pooled, 1));
    if (options.labels) {
      // A range may come back shorter than asked: the host skips unreadable images.
      if (!labels.defined() || labels.numel() != images.size(0)) {
        throw std::runtime_error("the " + std::string(split == sdk::Split::train ? "train" : "test") +
                                 " split has no label for every image");
      }
      ys.push_back(labels.reshape({-1}).to(torch::kCPU, torch::kLong));
    }
  }
  if (xs.empty()) return {torch::zeros({0, 0}), torch::zeros({0}, torch::kLong)};
  return {torch::cat(xs, 0), options.labels ? torch::cat(ys, 0) : torch::zeros({0}, torch::kLong)};
}

}  // namespace jepa::evaluators
