#include "ui/downsample.hpp"

#include <algorithm>
#include <cmath>

namespace jepa::ui {

Curve downsample(const Curve& in, size_t max_points) {
  const size_t n = in.steps.size();
  max_points = std::max<size_t>(max_points, 4);
  if (n <= max_points) return in;
  Curve out;
  out.steps.reserve(max_points + 2);
  out.values.reserve(max_points + 2);
  auto keep = [&](size_t i) {
    out.steps.push_back(in.steps[i]);
    out.values.push_back(in.values[i]);
  };
  keep(0);
  // Up to two points per bucket (three with a non-finite one, rare), between the kept ends.
  const size_t buckets = (max_points - 2) / 2;
  const size_t inner = n - 2;
  for (size_t b = 0; b < buckets; ++b) {
    const size_t lo = 1 + inner * b / buckets;
    const size_t hi = 1 + inner * (b + 1) / buckets;
    size_t min_i = hi;
    size_t max_i = hi;
    size_t bad_i = hi;
    for (size_t i = lo; i < hi; ++i) {
      const double v = in.values[i];
      if (!std::isfinite(v)) {
        if (bad_i == hi) bad_i = i;
        continue;
      }
      if (min_i == hi || v < in.values[min_i]) min_i = i;
      if (max_i == hi || v > in.values[max_i]) max_i = i;
    }
    size_t picks[3] = {min_i, max_i, bad_i};
    std::sort(picks, picks + 3);
    for (size_t k = 0; k < 3; ++k) {
      if (picks[k] != hi && (k == 0 || picks[k] != picks[k - 1])) keep(picks[k]);
    }
  }
  keep(n - 1);
  return out;
}

}  // namespace jepa::ui
