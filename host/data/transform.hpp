// Private to the data room (and its tests): seeded random helpers, the RandomResizedCrop box and
// the prepared per-image transform the loader and load_range share.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "data/dataset.hpp"

namespace jepa::data::detail {

// splitmix64 finaliser: spreads nearby seeds (epoch 0, 1, 2...) over the whole 64-bit space so
// the mt19937_64 streams seeded from them are unrelated.
uint64_t splitmix64(uint64_t x);
// A seed derived from three keys (order matters); used for (seed, epoch, index) and (seed, epoch).
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c);

// Portable draws: std::uniform_*_distribution differ across standard libraries, these do not.
// Uniform integer in [0, bound) by rejection (no modulo bias); bound > 0.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound);
// Uniform double in [0, 1) from the top 53 bits.
double uniform_unit(std::mt19937_64& rng);

// A crop rectangle inside an image: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
};

// torchvision's RandomResizedCrop.get_params with ratio [3/4, 4/3]: 10 tries of a random area
// fraction in [scale[0], scale[1]] and log-uniform aspect ratio, then the centre-crop fallback.
CropBox random_resized_crop_box(int height, int width, const std::array<double, 2>& scale, std::mt19937_64& rng);

// The generator for item `index` of epoch `epoch`: the same crop whatever thread decodes it.
std::mt19937_64 crop_rng(uint64_t seed, int64_t epoch, int64_t index);

// A Transform checked against the source's channel count, with the normalisation folded into one
// multiply-add per value and the identity case (no crop, same size) reduced to a table look-up.
class PreparedTransform {
 public:
  // Throws std::invalid_argument for a bad image size, crop scale, or a mean/std that has neither
  // one entry nor one per channel (or a zero std).
  PreparedTransform(const Transform& transform, int channels);

  int channels() const { return channels_; }
  int image_size() const { return size_; }
  bool random_crop() const { return random_crop_; }
  size_t floats_per_image() const { return static_cast<size_t>(channels_) * size_ * size_; }

  // The crop for this item: a random resized crop keyed by (seed, epoch, index) when random_crop,
  // else the whole image.
  CropBox crop_box(const Image& image, uint64_t seed, int64_t epoch, int64_t index) const;

  // Bilinear resize (align_corners=False) of `box` of `image` to image_size x image_size, scaled to
  // [0, 1], normalised, written as CHW to out[0 .. floats_per_image()). Throws std::runtime_error
  // when the image's channel count is not the source's or the box is outside the image.
  void apply(const Image& image, const CropBox& box, float* out) const;

 private:
  int channels_;
  int size_;
  bool random_crop_;
  std::array<double, 2> scale_;
  std::vector<float> gain_;                  // per channel: 1 / (255 * std)
  std::vector<float> bias_;                  // per channel: -mean / std
  std::vector<std::array<float, 256>> lut_;  // per channel: the normalised value of each byte
};

}  // namespace jepa::data::detail
