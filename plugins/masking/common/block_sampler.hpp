// The official I-JEPA block sampler's pieces, shared by the `multiblock` and `block` plugins.
// Numbers and semantics follow facebookresearch/ijepa (src/masks/multiblock.py); the code is ours.
#pragma once

#include <jepa/sdk/masking.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::masking {

// Block sizes: upstream seeds a torch.Generator with its global iteration counter and takes
// torch.rand(1), i.e. mt19937's 32-bit output masked to 24 bits over 2^24. Replaying that
// exactly gives the official sizes at every step (seed 0), and the same sizes after a resume.
// A non-zero seed shifts the counter so seeds replicate with different sizes.
class SizeGenerator {
 public:
  SizeGenerator(uint64_t seed, int64_t step)
      : engine_(static_cast<uint32_t>(static_cast<uint64_t>(step) + seed * 0x9E3779B97F4A7C15ULL)) {}
  double uniform() { return static_cast<double>(engine_() & 0xFFFFFFU) * (1.0 / 16777216.0); }

 private:
  std::mt19937 engine_;
};

// Block positions: upstream draws them from the global torch RNG (not reproducible per step);
// ours come from a SplitMix64 stream keyed by (seed, step), so masks are deterministic.
class PositionRng {
 public:
  PositionRng(uint64_t seed, int64_t step)
      : state_(mix(seed ^ 0xA0761D6478BD642FULL) ^ mix(static_cast<uint64_t>(step) + 0xE7037ED1A0B428DBULL)) {}

  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix(state_);
  }
  // Uniform integer in [0, n), n > 0, without modulo bias (Lemire's method).
  int64_t below(int64_t n) {
    const auto range = static_cast<uint64_t>(n);
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * range;
    auto low = static_cast<uint64_t>(m);
    if (low < range) {
      const uint64_t threshold = (0 - range) % range;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next()) * range;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<int64_t>(m >> 64);
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

struct BlockSize {
  int height = 0;
  int width = 0;
};

struct Rect {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
  bool contains(int r, int c) const { return r >= top && r < top + height && c >= left && c < left + width; }
};

// One uniform draw sets both scale and aspect ratio, as upstream (they are perfectly correlated).
inline BlockSize block_size(double u, int grid_h, int grid_w, const std::array<double, 2>& scale,
                            const std::array<double, 2>& aspect_ratio) {
  const double s = scale[0] + u * (scale[1] - scale[0]);
  const int max_keep = static_cast<int>(static_cast<double>(grid_h * grid_w) * s);
  const double ar = aspect_ratio[0] + u * (aspect_ratio[1] - aspect_ratio[0]);
  // Python's round() rounds half to even; nearbyint does too under the default rounding mode.
  int h = static_cast<int>(std::nearbyint(std::sqrt(max_keep * ar)));
  int w = static_cast<int>(std::nearbyint(std::sqrt(max_keep / ar)));
  h = std::max(1, std::min(h, grid_h - 1));
  w = std::max(1, std::min(w, grid_w - 1));
  return {h, w};
}

enum class PositionBound {
  official,  // top in [0, H-h-1]: the last row and column are never in any block (upstream)
  corrected  // top in [0, H-h]: the open upstream fix
};

inline PositionBound parse_bound(const std::string& s) {
  if (s == "official") return PositionBound::official;
  if (s == "corrected") return PositionBound::corrected;
  throw std::invalid_argument("position_bound must be 'official' or 'corrected', got '" + s + "'");
}

struct PlacedBlock {
  Rect rect;
  std::vector<int64_t> indices;  // raster order, after constraints
};

// Places one block as upstream's _sample_block_mask: a block must keep more than `min_keep`
// patches once the acceptable regions (the complements of `avoid`) are applied; after every 20
// failed draws one constraint is dropped. Upstream loops for ever when even the bare block
// cannot hold min_keep patches (small grids); we accept the block as drawn once no constraint is
// left, so a block costs at most 20 * (avoid.size() + 1) draws.
inline PlacedBlock place_block(const BlockSize& size, int grid_h, int grid_w, PositionBound bound,
                               const std::vector<Rect>& avoid, int min_keep, PositionRng& rng) {
  const int slack = bound == PositionBound::official ? 0 : 1;
  const int n_regions = static_cast<int>(avoid.size());
  int tries = 0;
  int timeout = 20;
  PlacedBlock block;
  for (;;) {
    block.rect.height = size.height;
    block.rect.width = size.width;
    block.rect.top = static_cast<int>(rng.below(grid_h - size.height + slack));
    block.rect.left = static_cast<int>(rng.below(grid_w - size.width + slack));
    const int active = std::max(n_regions - tries, 0);
    block.indices.clear();
    for (int r = block.rect.top; r < block.rect.top + size.height; ++r) {
      for (int c = block.rect.left; c < block.rect.left + size.width; ++c) {
        bool ok = true;
        for (int k = 0; k < active && ok; ++k) ok = !avoid[k].contains(r, c);
        if (ok) block.indices.push_back(static_cast<int64_t>(r) * grid_w + c);
      }
    }
    if (static_cast<int>(block.indices.size()) > min_keep || active == 0) return block;
    if (--timeout == 0) {
      ++tries;
      timeout = 20;
    }
  }
}

inline std::array<double, 2> as_range(const std::vector<double>& v, const char* name) {
  if (v.size() != 2 || v[0] > v[1]) {
    throw std::invalid_argument(std::string(name) + " must be [min, max] with min <= max");
  }
  return {v[0], v[1]};
}

inline void check_request(const sdk::MaskRequest& r) {
  if (r.grid_height < 2 || r.grid_width < 2) {
    throw std::invalid_argument("patch grid must be at least 2x2, got " + std::to_string(r.grid_height) + "x" +
                                std::to_string(r.grid_width));
  }
  if (r.batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
}

}  // namespace jepa::masking
