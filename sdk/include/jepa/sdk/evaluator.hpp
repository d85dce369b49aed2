// Evaluators: measure a frozen encoder (linear probe, kNN, low-shot, collapse monitors). The
// host owns the data and the encoder; an evaluator pulls batches and features through EvalInput,
// so the same interface serves end-of-run probes and cheap monitors every N steps.
#pragma once

#include <jepa/sdk/abi.h>
#include <jepa/sdk/params.hpp>

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace jepa::sdk {

enum class Split { train, test };

struct EvalInput {
  // Number of labelled images in a split (0 when the dataset has no labels for it).
  std::function<int64_t(Split)> size;
  // Images [n, C, H, W] and int64 labels [n] for indices [begin, end) of a split.
  std::function<std::pair<torch::Tensor, torch::Tensor>(Split, int64_t begin, int64_t end)> batch;
  // Frozen target encoder, no gradient: outputs of its last `layers` blocks, each [n, N, D].
  std::function<std::vector<torch::Tensor>(const torch::Tensor& images, int64_t layers)> encode;
  int64_t step = 0;   // training step the encoder was taken at
  uint64_t seed = 0;  // for evaluators that draw (low-shot subsets, ...)
  torch::Device device = torch::kCPU;
};

struct Metric {
  std::string name;  // e.g. "top1"; stored as "<evaluator>/<name>"
  double value = 0.0;
};

class Evaluator {
 public:
  static constexpr int32_t kind = JEPA_KIND_EVALUATOR;
  using interface_type = Evaluator;
  virtual ~Evaluator() = default;
  virtual std::vector<Metric> evaluate(const EvalInput& input) = 0;
};

}  // namespace jepa::sdk
