// Long curves for the browser: a run logs a point per step, and a 10,000-point line per metric
// makes the page slow to receive and to draw. Min/max buckets keep what a reader looks for in a
// training curve (spikes, divergence, the envelope of noisy loss) at a fixed number of points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace jepa::ui {

struct Curve {
  std::vector<int64_t> steps;
  std::vector<double> values;  // NaN and infinities stay (the page shows them as gaps)
};

// At most about `max_points` points (never fewer than 4 are kept): the first and the last point,
// and per bucket of consecutive points the lowest and the highest in step order, plus the first
// non-finite point of a bucket. A curve that already fits is returned unchanged.
Curve downsample(const Curve& curve, size_t max_points);

}  // namespace jepa::ui
