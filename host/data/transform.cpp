// RandomResizedCrop (torchvision's parameters), bilinear resize with PyTorch's align_corners=False
// sampling, and normalisation to CHW float.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "data/transform.hpp"

namespace jepa::data::detail {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  // Chained rather than XORed together, so (a, b, c) and (b, a, c) give different seeds.
  uint64_t h = splitmix64(a);
  h = splitmix64(h ^ b);
  return splitmix64(h ^ c);
}

uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  // Reject the lowest (2^64 mod bound) values so that every residue is equally likely.
  const uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const uint64_t x = rng();
    if (x >= threshold) return x % bound;
  }
}

double uniform_unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

std::mt19937_64 crop_rng(uint64_t seed, int64_t epoch, int64_t index) {
  // The constant separates this stream from the loader's shuffle, which is keyed by (seed, epoch).
  return std::mt19937_64(
      mix_seed(seed ^ 0x6372'6f70'6372'6f70ULL, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)));
}

CropBox random_resized_crop_box(int height, int width, const std::array<double, 2>& scale, std::mt19937_64& rng) {
  const double area = static_cast<double>(height) * width;
  const double log_lo = std::log(3.0 / 4.0);
  const double log_hi = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * (scale[0] + (scale[1] - scale[0]) * uniform_unit(rng));
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * uniform_unit(rng));
    // nearbyint rounds half to even, as Python's round() in torchvision.
    const double w = std::nearbyint(std::sqrt(target_area * aspect));
    const double h = std::nearbyint(std::sqrt(target_area / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox box;
      box.height = static_cast<int>(h);
      box.width = static_cast<int>(w);
      box.top = static_cast<int>(uniform_below(rng, static_cast<uint64_t>(height - box.height) + 1));
      box.left = static_cast<int>(uniform_below(rng, static_cast<uint64_t>(width - box.width) + 1));
      return box;
    }
  }
  // Fallback: the largest centred crop whose aspect ratio lies in [3/4, 4/3].
  CropBox box;
  const double in_ratio = static_cast<double>(width) / height;
  if (in_ratio < 3.0 / 4.0) {
    box.width = width;
    box.height = static_cast<int>(std::nearbyint(width / (3.0 / 4.0)));
  } else if (in_ratio > 4.0 / 3.0) {
    box.height = height;
    box.width = static_cast<int>(std::nearbyint(height * (4.0 / 3.0)));
  } else {
    box.width = width;
    box.height = height;
  }
  box.height = std::clamp(box.height, 1, height);
  box.width = std::clamp(box.width, 1, width);
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  return box;
}

namespace {

std::vector<double> per_channel(const std::vector<double>& values, int channels, const char* what) {
  if (values.size() == 1) return std::vector<double>(static_cast<size_t>(channels), values[0]);
  if (values.size() != static_cast<size_t>(channels)) {
    throw std::invalid_argument("transform: " + std::string(what) + " has " + std::to_string(values.size()) +
                                " entries; the dataset has " + std::to_string(channels) + " channel(s), so give 1 or " +
                                std::to_string(channels));
  }
  return values;
}

// Source sampling for one output axis, as PyTorch's upsample_bilinear2d with align_corners=False:
// the output pixel centre (d + 0.5) maps to scale * (d + 0.5) - 0.5 in the input, clamped at 0.
struct Taps {
  std::vector<int> lo;  // first source sample (already multiplied by `stride`, offset included)
  std::vector<int> hi;  // second source sample (the same as lo at the last input pixel)
  std::vector<float> frac;
};

Taps make_taps(int in_size, int out_size, int offset, int stride) {
  Taps taps;
  taps.lo.resize(static_cast<size_t>(out_size));
  taps.hi.resize(static_cast<size_t>(out_size));
  taps.frac.resize(static_cast<size_t>(out_size));
  const double scale = static_cast<double>(in_size) / out_size;
  for (int d = 0; d < out_size; ++d) {
    const double src = std::max(0.0, scale * (d + 0.5) - 0.5);
    const int i0 = std::min(static_cast<int>(src), in_size - 1);
    const int i1 = std::min(i0 + 1, in_size - 1);
    taps.lo[d] = (offset + i0) * stride;
    taps.hi[d] = (offset + i1) * stride;
    taps.frac[d] = static_cast<float>(src - i0);
  }
  return taps;
}

}  // namespace

PreparedTransform::PreparedTransform(const Transform& transform, int channels)
    : channels_(channels),
      size_(transform.image_size),
      random_crop_(transform.random_crop),
      scale_(transform.crop_scale) {
  if (channels <= 0) throw std::invalid_argument("transform: the dataset has no channels");
  if (size_ <= 0) throw std::invalid_argument("transform: image_size must be positive, got " + std::to_string(size_));
  if (!(scale_[0] >= 0 && scale_[0] <= scale_[1])) {
    throw std::invalid_argument("transform: crop_scale must satisfy 0 <= scale0 <= scale1");
  }
  const auto mean = per_channel(transform.mean, channels, "mean");
  const auto stdev = per_channel(transform.std, channels, "std");
  gain_.resize(static_cast<size_t>(channels));
  bias_.resize(static_cast<size_t>(channels));
  lut_.resize(static_cast<size_t>(channels));
  for (int c = 0; c < channels; ++c) {
    if (!(stdev[c] != 0 && std::isfinite(stdev[c]) && std::isfinite(mean[c]))) {
      throw std::invalid_argument("transform: std must be non-zero and mean/std finite");
    }
    gain_[c] = static_cast<float>(1.0 / (255.0 * stdev[c]));
    bias_[c] = static_cast<float>(-mean[c] / stdev[c]);
    // The same float expression as the resize path, so both give identical values for a byte.
    for (int v = 0; v < 256; ++v) lut_[c][v] = static_cast<float>(v) * gain_[c] + bias_[c];
  }
}

CropBox PreparedTransform::crop_box(const Image& image, uint64_t seed, int64_t epoch, int64_t index) const {
  if (!random_crop_) return CropBox{0, 0, image.height, image.width};
  auto rng = crop_rng(seed, epoch, index);
  return random_resized_crop_box(image.height, image.width, scale_, rng);
}

void PreparedTransform::apply(const Image& image, const CropBox& box, float* out) const {
  const int C = channels_;
  const int S = size_;
  if (image.channels != C) {
    throw std::runtime_error("transform: image has " + std::to_string(image.channels) + " channel(s), expected " +
                             std::to_string(C));
  }
  if (image.height <= 0 || image.width <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.height) * image.width * C) {
    throw std::runtime_error("transform: image buffer does not match its size");
  }
  if (box.top < 0 || box.left < 0 || box.height <= 0 || box.width <= 0 || box.top + box.height > image.height ||
      box.left + box.width > image.width) {
    throw std::runtime_error("transform: crop box outside the image");
  }
  const size_t plane = static_cast<size_t>(S) * S;
  const uint8_t* pixels = image.pixels.data();
  const size_t row_stride = static_cast<size_t>(image.width) * C;

  if (box.height == S && box.width == S) {
    // Same size: bilinear sampling lands exactly on the pixels, so this is a normalised copy.
    for (int c = 0; c < C; ++c) {
      const auto& lut = lut_[c];
      float* dst = out + c * plane;
      for (int y = 0; y < S; ++y) {
        const uint8_t* src = pixels + (box.top + y) * row_stride + static_cast<size_t>(box.left) * C + c;
        for (int x = 0; x < S; ++x) dst[y * S + x] = lut[src[x * C]];
      }
    }
    return;
  }

  // Separable: each source row needed is resampled horizontally once (into planar float rows),
  // then every output row is a vectorisable blend of two of those rows.
  const Taps xs = make_taps(box.width, S, box.left, C);
  const Taps ys = make_taps(box.height, S, box.top, 1);
  std::vector<float> buffers(2 * static_cast<size_t>(C) * S);
  float* rows[2] = {buffers.data(), buffers.data() + static_cast<size_t>(C) * S};
  int row_of[2] = {-1, -1};  // which source row each buffer holds
  const auto resample_row = [&](int src_row, float* dst) {
    const uint8_t* r = pixels + src_row * row_stride;
    for (int x = 0; x < S; ++x) {
      const int a = xs.lo[x];
      const int b = xs.hi[x];
      const float fx = xs.frac[x];
      // Written as a + t * (b - a) so that equal neighbours give back exactly their value.
      for (int c = 0; c < C; ++c) dst[c * S + x] = r[a + c] + fx * (static_cast<float>(r[b + c]) - r[a + c]);
    }
  };
  for (int y = 0; y < S; ++y) {
    const int lo = ys.lo[y];
    const int hi = ys.hi[y];
    // Source rows only move forwards with y, so the previous pair is reused when it still applies.
    if (row_of[0] != lo) {
      if (row_of[1] == lo) {
        std::swap(rows[0], rows[1]);
        std::swap(row_of[0], row_of[1]);
      } else {
        resample_row(lo, rows[0]);
        row_of[0] = lo;
      }
    }
    if (hi != lo && row_of[1] != hi) {
      resample_row(hi, rows[1]);
      row_of[1] = hi;
    }
    const float fy = ys.frac[y];
    for (int c = 0; c < C; ++c) {
      const float* top = rows[0] + static_cast<size_t>(c) * S;
      const float* bottom = (hi == lo ? rows[0] : rows[1]) + static_cast<size_t>(c) * S;
      const float gain = gain_[c];
      const float bias = bias_[c];
      float* dst = out + c * plane + static_cast<size_t>(y) * S;
      for (int x = 0; x < S; ++x) dst[x] = (top[x] + fy * (bottom[x] - top[x])) * gain + bias;
    }
  }
}

}  // namespace jepa::data::detail
