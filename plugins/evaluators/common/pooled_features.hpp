// Average-pooled features of the frozen target encoder, shared by the evaluators so that every
// probe (linear, kNN, low-shot, collapse monitor) measures the same representation: each block's
// patch tokens are averaged and the last N blocks' averages concatenated (the paper's transfer
// recipe uses N = 4). `grid = G > 1` averages each of G x G regions of the token grid instead and
// concatenates them: mean pooling over the whole image cancels the positional embedding and loses
// the layout, which small images need (a region readout keeps it at G*G times the width).
#pragma once

#include <jepa/sdk/evaluator.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
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
  int64_t grid = 1;         // 1: mean over all tokens; G: mean over each of G x G regions, concatenated
};

// [n, N, D] tokens of a square grid -> [n, G*G*D]: the mean of each of G x G regions (adaptive
// average pooling, as torch's), concatenated in row-major order. A single token (raw pixels as one
// vector) is its own readout.
inline torch::Tensor pool_tokens(const torch::Tensor& tokens, int64_t grid) {
  if (grid <= 1 || tokens.size(1) == 1) return tokens.mean(1);
  const int64_t n = tokens.size(1);
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  if (side * side != n) {
    throw std::invalid_argument("pool_grid = " + std::to_string(grid) +
                                " needs a square token grid; the encoder gave " + std::to_string(n) + " tokens");
  }
  if (grid > side) {
    throw std::invalid_argument("pool_grid = " + std::to_string(grid) + " is finer than the encoder's " +
                                std::to_string(side) + "x" + std::to_string(side) + " token grid");
  }
  const auto x = tokens.transpose(1, 2).reshape({tokens.size(0), tokens.size(2), side, side});
  return torch::adaptive_avg_pool2d(x, {grid, grid}).permute({0, 2, 3, 1}).flatten(1);
}

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
    for (const auto& l : layers) pooled.push_back(pool_tokens(l, options.grid).to(torch::kCPU, torch::kFloat32));
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
