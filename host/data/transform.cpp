// RandomResizedCrop (torchvision's parameters), Resize + CenterCrop, PIL's antialiased bilinear
// resample (the maths of Pillow's Resample.c, 8-bit path, rewritten), and normalisation.
#include <fmt/format.h>
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

// Pillow's fixed point for 8-bit images: 32 bits less 8 for the value and 2 for headroom.
constexpr int kPrecisionBits = 22;
constexpr int32_t kHalf = int32_t{1} << (kPrecisionBits - 1);

inline uint8_t clip8(int32_t accumulated) {
  const int32_t v = accumulated >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// PIL's bilinear filter: a triangle of half-width 1.
inline double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

}  // namespace

int Axis::lowest() const {
  return *std::min_element(first.begin(), first.end());
}

int Axis::highest() const {
  int h = 0;
  for (size_t i = 0; i < first.size(); ++i) h = std::max(h, first[i] + count[i]);
  return h;
}

Axis resample_axis(int in_size, int offset, int out_full, int out_begin, int out_count, bool reverse) {
  if (in_size <= 0 || out_full <= 0 || out_count <= 0 || out_begin < 0 || out_begin + out_count > out_full) {
    throw std::invalid_argument(fmt::format("resample: bad axis (in {}, out {}, outputs [{}, {}))", in_size, out_full,
                                            out_begin, out_begin + out_count));
  }
  // As Pillow's precompute_coeffs: the filter widens with the downscale factor (antialiasing),
  // is evaluated at pixel centres, clamped to the source and normalised to sum 1.
  const double scale = static_cast<double>(in_size) / out_full;
  const double filterscale = std::max(1.0, scale);
  const double support = filterscale;  // the triangle's support (1) times filterscale
  Axis axis;
  axis.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.first.resize(static_cast<size_t>(out_count));
  axis.count.resize(static_cast<size_t>(out_count));
  axis.weight.assign(static_cast<size_t>(out_count) * axis.taps, 0);
  std::vector<double> k(static_cast<size_t>(axis.taps));
  for (int j = 0; j < out_count; ++j) {
    const double center = (out_begin + j + 0.5) * scale;
    // Truncation toward zero, as the C cast Pillow uses.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double sum = 0;
    for (int x = 0; x < xmax; ++x) {
      k[static_cast<size_t>(x)] = triangle((x + xmin - center + 0.5) / filterscale);
      sum += k[static_cast<size_t>(x)];
    }
    const int slot = reverse ? out_count - 1 - j : j;
    axis.first[static_cast<size_t>(slot)] = offset + xmin;
    axis.count[static_cast<size_t>(slot)] = xmax;
    int32_t* w = axis.weight.data() + static_cast<size_t>(slot) * axis.taps;
    for (int x = 0; x < xmax; ++x) {
      const double normalised = sum != 0.0 ? k[static_cast<size_t>(x)] / sum : k[static_cast<size_t>(x)];
      w[x] = static_cast<int32_t>(normalised < 0 ? -0.5 + normalised * (1 << kPrecisionBits)
                                                 : 0.5 + normalised * (1 << kPrecisionBits));
    }
  }
  return axis;
}

CropBox SamplePlan::region() const {
  CropBox box;
  box.top = y.lowest();
  box.left = x.lowest();
  box.height = y.highest() - box.top;
  box.width = x.highest() - box.left;
  return box;
}

namespace {

// The passes are the hot loops of the pipeline (a third of an image's time), so they are compiled
// twice, for AVX2 and for the baseline, and picked at load time (GCC's target_clones): one binary
// for every x86-64 machine. The arithmetic is the same integer arithmetic either way.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define JEPA_HOT_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define JEPA_HOT_LOOP
#endif

// The horizontal pass with K taps for every output: each window is moved inside the source row
// (and its weights shifted, zeros around them), so the loop has a fixed trip count and unrolls.
struct FixedTaps {
  int taps = 0;
  std::vector<int> first;  // relative to the row's first decoded pixel
  std::vector<int32_t> weight;
};

bool fixed_taps(const Axis& axis, int lo, int hi, FixedTaps& f) {
  const int K = axis.taps;
  if (hi - lo < K) return false;
  const size_t out = axis.first.size();
  f.taps = K;
  f.first.resize(out);
  f.weight.assign(out * K, 0);
  for (size_t o = 0; o < out; ++o) {
    const int start = std::min(axis.first[o], hi - K);
    const int shift = axis.first[o] - start;
    f.first[o] = start - lo;
    for (int t = 0; t < axis.count[o]; ++t) f.weight[o * K + shift + t] = axis.weight[o * axis.taps + t];
  }
  return true;
}

template <int C, int K>
__attribute__((always_inline)) inline void horizontal_fixed(const uint8_t* src, const FixedTaps& f, uint8_t* dst) {
  const int out = static_cast<int>(f.first.size());
  const int* first = f.first.data();
  const int32_t* weight = f.weight.data();
  for (int o = 0; o < out; ++o) {
    const uint8_t* p = src + static_cast<size_t>(first[o]) * C;
    const int32_t* w = weight + static_cast<size_t>(o) * K;
    int32_t acc[C];
    for (int c = 0; c < C; ++c) acc[c] = kHalf;
    for (int t = 0; t < K; ++t) {
      for (int c = 0; c < C; ++c) acc[c] += p[t * C + c] * w[t];
    }
    for (int c = 0; c < C; ++c) dst[o * C + c] = clip8(acc[c]);
  }
}

// Any channel count and window: the general form of the same sums.
void horizontal_any(const uint8_t* src, const Axis& x, int left, int C, uint8_t* dst) {
  const int out = static_cast<int>(x.first.size());
  for (int o = 0; o < out; ++o) {
    const uint8_t* p = src + static_cast<size_t>(x.first[o] - left) * C;
    const int32_t* w = x.weight.data() + static_cast<size_t>(o) * x.taps;
    for (int c = 0; c < C; ++c) {
      int32_t acc = kHalf;
      for (int t = 0; t < x.count[o]; ++t) acc += p[t * C + c] * w[t];
      dst[o * C + c] = clip8(acc);
    }
  }
}

// Rows [0, rows) of the source (row_stride bytes apart) resampled into rows of mid_stride bytes.
JEPA_HOT_LOOP void horizontal_pass(const uint8_t* src, size_t row_stride, int rows, const Axis& x, const FixedTaps* f,
                                   int left, int C, uint8_t* mid, size_t mid_stride) {
  for (int r = 0; r < rows; ++r) {
    const uint8_t* in = src + static_cast<size_t>(r) * row_stride;
    uint8_t* out = mid + static_cast<size_t>(r) * mid_stride;
    const int K = f != nullptr ? f->taps : 0;
    if (C == 3 && K == 3) {
      horizontal_fixed<3, 3>(in, *f, out);
    } else if (C == 3 && K == 5) {
      horizontal_fixed<3, 5>(in, *f, out);
    } else if (C == 3 && K == 7) {
      horizontal_fixed<3, 7>(in, *f, out);
    } else if (C == 3 && K == 9) {
      horizontal_fixed<3, 9>(in, *f, out);
    } else if (C == 3 && K == 11) {
      horizontal_fixed<3, 11>(in, *f, out);
    } else if (C == 1 && K == 3) {
      horizontal_fixed<1, 3>(in, *f, out);
    } else if (C == 1 && K == 5) {
      horizontal_fixed<1, 5>(in, *f, out);
    } else {
      horizontal_any(in, x, left, C, out);
    }
  }
}

// One output row of the vertical pass: the weighted sum of `count` intermediate rows, rounded,
// scattered to planar CHW.
JEPA_HOT_LOOP void vertical_row(const uint8_t* rows, size_t stride, const int32_t* w, int count, int32_t* acc,
                                int out_w, int C, uint8_t* dst, size_t plane) {
  const size_t n = static_cast<size_t>(out_w) * C;
  for (size_t i = 0; i < n; ++i) acc[i] = kHalf;
  for (int t = 0; t < count; ++t) {
    const uint8_t* r = rows + static_cast<size_t>(t) * stride;
    const int32_t k = w[t];
    for (size_t i = 0; i < n; ++i) acc[i] += r[i] * k;
  }
  if (C == 3) {
    for (int x = 0; x < out_w; ++x) {
      dst[x] = clip8(acc[3 * x]);
      dst[plane + x] = clip8(acc[3 * x + 1]);
      dst[2 * plane + x] = clip8(acc[3 * x + 2]);
    }
  } else {
    for (int x = 0; x < out_w; ++x) {
      for (int c = 0; c < C; ++c) dst[c * plane + x] = clip8(acc[static_cast<size_t>(x) * C + c]);
    }
  }
}

}  // namespace

void resample(const Image& image, const SamplePlan& plan, uint8_t* out, std::vector<uint8_t>& scratch) {
  const int C = image.channels;
  const int out_w = static_cast<int>(plan.x.first.size());
  const int out_h = static_cast<int>(plan.y.first.size());
  const int row_lo = plan.y.lowest();
  const int row_hi = plan.y.highest();
  const size_t src_stride = static_cast<size_t>(image.width) * C;
  const size_t mid_stride = static_cast<size_t>(out_w) * C;
  // Pass 1: every source row the vertical pass reads, resampled horizontally (Pillow's order).
  const size_t mid_bytes = static_cast<size_t>(row_hi - row_lo) * mid_stride;
  if (scratch.size() < mid_bytes) scratch.resize(mid_bytes);
  uint8_t* mid = scratch.data();
  thread_local FixedTaps fixed;
  const bool have_fixed = fixed_taps(plan.x, image.left, image.left + image.width, fixed);
  horizontal_pass(image.pixels.data() + static_cast<size_t>(row_lo - image.top) * src_stride, src_stride,
                  row_hi - row_lo, plan.x, have_fixed ? &fixed : nullptr, image.left, C, mid, mid_stride);
  // Pass 2: each output row a weighted sum of whole intermediate rows (contiguous, vectorisable).
  thread_local std::vector<int32_t> accumulator;
  accumulator.resize(mid_stride);
  const size_t plane = static_cast<size_t>(out_w) * out_h;
  for (int o = 0; o < out_h; ++o) {
    vertical_row(mid + static_cast<size_t>(plan.y.first[o] - row_lo) * mid_stride, mid_stride,
                 plan.y.weight.data() + static_cast<size_t>(o) * plan.y.taps, plan.y.count[o], accumulator.data(),
                 out_w, C, out + static_cast<size_t>(o) * out_w, plane);
  }
}

}  // namespace jepa::data::detail

namespace jepa::data {

Normalisation normalisation(const Transform& transform, int channels) {
  if (channels <= 0) throw std::invalid_argument("transform: the dataset has no channels");
  const auto mean = detail::per_channel(transform.mean, channels, "mean");
  const auto stdev = detail::per_channel(transform.std, channels, "std");
  Normalisation n;
  for (int c = 0; c < channels; ++c) {
    if (!(stdev[c] != 0 && std::isfinite(stdev[c]) && std::isfinite(mean[c]))) {
      throw std::invalid_argument("transform: std must be non-zero and mean/std finite");
    }
    n.gain.push_back(static_cast<float>(1.0 / (255.0 * stdev[c])));
    n.bias.push_back(static_cast<float>(-mean[c] / stdev[c]));
  }
  return n;
}

}  // namespace jepa::data

namespace jepa::data::detail {

PreparedTransform::PreparedTransform(const Transform& transform, int channels)
    : transform_(transform), channels_(channels), size_(transform.image_size) {
  if (size_ <= 0) throw std::invalid_argument("transform: image_size must be positive, got " + std::to_string(size_));
  const auto& scale = transform.crop_scale;
  if (!(scale[0] >= 0 && scale[0] <= scale[1])) {
    throw std::invalid_argument("transform: crop_scale must satisfy 0 <= scale0 <= scale1");
  }
  // torchvision's evaluation convention: Resize(256) before CenterCrop(224), scaled.
  eval_resize_ = transform.eval_resize > 0 ? transform.eval_resize : size_ * 256 / 224;
  if (transform.eval_center_crop && eval_resize_ < size_) {
    throw std::invalid_argument(
        fmt::format("transform: eval_resize {} is smaller than image_size {}", eval_resize_, size_));
  }
  const Normalisation n = normalisation(transform, channels);
  lut_.resize(static_cast<size_t>(channels));
  for (int c = 0; c < channels; ++c) {
    for (int v = 0; v < 256; ++v) lut_[c][v] = static_cast<float>(v) * n.gain[c] + n.bias[c];
  }
}

SamplePlan PreparedTransform::plan(int height, int width, uint64_t seed, int64_t epoch, int64_t index) const {
  if (height <= 0 || width <= 0) throw std::runtime_error(fmt::format("transform: empty image {}x{}", width, height));
  const int S = size_;
  SamplePlan plan;
  if (transform_.random_crop) {
    auto rng = crop_rng(seed, epoch, index);
    const CropBox box = random_resized_crop_box(height, width, transform_.crop_scale, rng);
    const bool flip = transform_.horizontal_flip && uniform_unit(rng) < 0.5;
    plan.x = resample_axis(box.width, box.left, S, 0, S, flip);
    plan.y = resample_axis(box.height, box.top, S, 0, S);
  } else if (transform_.eval_center_crop) {
    // torchvision's Resize(int): the shorter side to eval_resize, the longer one scaled and
    // truncated; then CenterCrop with Python's round() of half the margin.
    const int R = eval_resize_;
    int new_w = R;
    int new_h = R;
    if (width <= height) {
      new_h = static_cast<int>(static_cast<double>(R) * height / width);
    } else {
      new_w = static_cast<int>(static_cast<double>(R) * width / height);
    }
    const int top = static_cast<int>(std::nearbyint((new_h - S) / 2.0));
    const int left = static_cast<int>(std::nearbyint((new_w - S) / 2.0));
    plan.x = resample_axis(width, 0, new_w, left, S);
    plan.y = resample_axis(height, 0, new_h, top, S);
  } else {
    plan.x = resample_axis(width, 0, S, 0, S);
    plan.y = resample_axis(height, 0, S, 0, S);
  }
  return plan;
}

void PreparedTransform::apply(const Image& image, const SamplePlan& plan, float* f32, uint8_t* u8) const {
  const int C = channels_;
  if (image.channels != C) {
    throw std::runtime_error("transform: image has " + std::to_string(image.channels) + " channel(s), expected " +
                             std::to_string(C));
  }
  if (image.height <= 0 || image.width <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.height) * image.width * C) {
    throw std::runtime_error("transform: image buffer does not match its size");
  }
  const CropBox r = plan.region();
  if (r.top < image.top || r.left < image.left || r.top + r.height > image.top + image.height ||
      r.left + r.width > image.left + image.width) {
    throw std::runtime_error("transform: the decoded window does not cover the crop");
  }
  thread_local std::vector<uint8_t> scratch;
  if (u8 != nullptr) {
    resample(image, plan, u8, scratch);
    return;
  }
  thread_local std::vector<uint8_t> bytes;
  bytes.resize(values_per_image());
  resample(image, plan, bytes.data(), scratch);
  normalise(bytes.data(), f32, 1);
}

void PreparedTransform::normalise(const uint8_t* in, float* out, size_t images) const {
  const size_t plane = static_cast<size_t>(size_) * size_;
  for (size_t i = 0; i < images; ++i) {
    for (int c = 0; c < channels_; ++c) {
      const auto& lut = lut_[static_cast<size_t>(c)];
      const size_t base = (i * channels_ + c) * plane;
      for (size_t p = 0; p < plane; ++p) out[base + p] = lut[in[base + p]];
    }
  }
}

}  // namespace jepa::data::detail
