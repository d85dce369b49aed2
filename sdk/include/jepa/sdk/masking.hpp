// Masking strategies: the C++ face of the pure C masking table. No LibTorch here, so a masking
// plugin keeps working across LibTorch upgrades.
#pragma once

#include <jepa/sdk/abi.h>
#include <jepa/sdk/params.hpp>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::sdk {

struct MaskRequest {
  int grid_height = 14;
  int grid_width = 14;
  int batch_size = 1;
  uint64_t seed = 0;
  int64_t step = 0;
};

// Row-major patch indices. context: [context_blocks][batch_size][context_length] flattened,
// target: [target_blocks][batch_size][target_length] flattened.
struct MaskSample {
  int batch_size = 0;
  int context_blocks = 0;
  int context_length = 0;
  std::vector<int64_t> context;
  int target_blocks = 0;
  int target_length = 0;
  std::vector<int64_t> target;

  const int64_t* context_row(int block, int image) const {
    return context.data() + (static_cast<size_t>(block) * batch_size + image) * context_length;
  }
  const int64_t* target_row(int block, int image) const {
    return target.data() + (static_cast<size_t>(block) * batch_size + image) * target_length;
  }
};

// Per-image index lists, indexed [image][block].
using IndexLists = std::vector<std::vector<std::vector<int64_t>>>;

// Stacks per-image index lists into equal lengths the way the official collator does: every
// list is cut to the shortest one in the batch by keeping its first (raster-order) indices.
inline void collate_truncated(const IndexLists& lists, int& blocks, int& length, std::vector<int64_t>& out) {
  const size_t batch = lists.size();
  blocks = batch == 0 ? 0 : static_cast<int>(lists[0].size());
  size_t min_len = SIZE_MAX;
  for (const auto& image : lists) {
    if (static_cast<int>(image.size()) != blocks) {
      throw std::logic_error("collate_truncated: images have different block counts");
    }
    for (const auto& block : image) min_len = std::min(min_len, block.size());
  }
  if (min_len == SIZE_MAX) min_len = 0;
  length = static_cast<int>(min_len);
  out.resize(static_cast<size_t>(blocks) * batch * min_len);
  for (int b = 0; b < blocks; ++b) {
    for (size_t i = 0; i < batch; ++i) {
      std::copy_n(lists[i][b].begin(), min_len, out.begin() + (b * batch + i) * min_len);
    }
  }
}

// Implement this, then register it with `plugin.add<YourStrategy>(...)` in JEPA_PLUGIN.
// The constructor receives the resolved parameters: `explicit YourStrategy(const Params&)`.
// sample() must be deterministic given (request, parameters) and must terminate.
class MaskingStrategy {
 public:
  static constexpr int32_t kind = JEPA_KIND_MASKING;
  virtual ~MaskingStrategy() = default;
  virtual MaskSample sample(const MaskRequest& request) = 0;
};

}  // namespace jepa::sdk
