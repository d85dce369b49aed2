// Private to the data room (and its tests): seeded random helpers, the RandomResizedCrop box, PIL's
// antialiased bilinear resample, and the prepared per-image transform the loader and load_range
// share.
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

// torchvision's RandomResizedCrop.get_params with ratio [3/4, 4/3]: 10 tries of a random area
// fraction in [scale[0], scale[1]] and log-uniform aspect ratio, then the centre-crop fallback.
CropBox random_resized_crop_box(int height, int width, const std::array<double, 2>& scale, std::mt19937_64& rng);

// The generator for item `index` of epoch `epoch`: the same crop whatever thread decodes it.
std::mt19937_64 crop_rng(uint64_t seed, int64_t epoch, int64_t index);

// One output axis of PIL's resample (ImagingResample, BILINEAR: a triangle filter of support
// max(1, in/out)), fixed point with 22 fractional bits as Pillow's 8-bit path. Outputs
// [out_begin, out_begin + out_count) of a resize of `in_size` source pixels to `out_full` pixels;
// source index i is pixel offset + i of the image. The filter is clamped to the `in_size` pixels,
// so a crop-then-resize clamps at the crop's edges and a resize-then-crop at the image's.
struct Axis {
  int taps = 0;                 // weights per output (the widest window)
  std::vector<int> first;       // per output: first source pixel (image coordinates)
  std::vector<int> count;       // per output: source pixels weighted
  std::vector<int32_t> weight;  // per output: `taps` weights, the first `count` used
  int lowest() const;           // first source pixel any output reads
  int highest() const;          // one past the last
};
Axis resample_axis(int in_size, int offset, int out_full, int out_begin, int out_count, bool reverse = false);

// How one item becomes image_size x image_size: the two axes (already reversed for a flip).
struct SamplePlan {
  Axis x;
  Axis y;
  // The source pixels the plan reads: what a crop decode must deliver.
  CropBox region() const;
};

// Resamples `image` (a whole image or a window of one that covers plan.region()) with `plan`:
// a horizontal pass rounded to 8 bits, then a vertical pass rounded to 8 bits, as Pillow, written
// as CHW uint8 to `out` (channels * height * width). `scratch` is reused between calls.
void resample(const Image& image, const SamplePlan& plan, uint8_t* out, std::vector<uint8_t>& scratch);

// A Transform checked against the source's channel count, with the normalisation folded into one
// table per channel.
class PreparedTransform {
 public:
  // Throws std::invalid_argument for a bad image size, crop scale, eval size, or a mean/std that
  // has neither one entry nor one per channel (or a zero std).
  PreparedTransform(const Transform& transform, int channels);

  int channels() const { return channels_; }
  int image_size() const { return size_; }
  bool random_crop() const { return transform_.random_crop; }
  size_t values_per_image() const { return static_cast<size_t>(channels_) * size_ * size_; }

  // The plan for item `index` of an image of this size: a random resized crop (and flip) keyed by
  // (seed, epoch, index) when random_crop, else the evaluation transform. Throws
  // std::runtime_error for an empty image.
  SamplePlan plan(int height, int width, uint64_t seed, int64_t epoch, int64_t index) const;

  // Applies `plan` to `image`, writing CHW to exactly one of `f32` (normalised) or `u8` (0..255).
  // Throws std::runtime_error when the image's channel count is not the source's or it does not
  // cover the plan's region.
  void apply(const Image& image, const SamplePlan& plan, float* f32, uint8_t* u8) const;

  // Normalises n CHW images of 8-bit values into floats, as apply(..., f32, nullptr) would.
  void normalise(const uint8_t* in, float* out, size_t images) const;

 private:
  Transform transform_;
  int channels_;
  int size_;
  int eval_resize_;
  std::vector<std::array<float, 256>> lut_;  // per channel: the normalised value of each byte
};

}  // namespace jepa::data::detail
