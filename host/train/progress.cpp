#include "train/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace jepa::train {

namespace {

std::string duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace

Progress::Progress(bool enabled, int64_t total_steps, int64_t steps_per_epoch, int64_t start_step, int64_t batch_size)
    : enabled_(enabled && ::isatty(STDERR_FILENO) != 0),
      total_(std::max<int64_t>(1, total_steps)),
      per_epoch_(std::max<int64_t>(1, steps_per_epoch)),
      start_step_(start_step),
      batch_size_(batch_size) {}

void Progress::update(int64_t step, int64_t epoch, double loss, double lr, double now) {
  if (!enabled_) return;
  if (start_time_ < 0) start_time_ = now;
  // Redraw at most 4 times a second: terminal output is not free.
  if (last_draw_ >= 0 && now - last_draw_ < 0.25 && step < total_) return;
  last_draw_ = now;
  const double elapsed = now - start_time_;
  const int64_t done = step - start_step_;
  const double rate = elapsed > 0 ? done / elapsed : 0.0;  // steps per second
  const double eta = rate > 0 ? (total_ - step) / rate : 0.0;
  const int width = 24;
  const int filled = static_cast<int>(width * static_cast<double>(step) / total_);
  fmt::print(stderr, "\r[{}{}] step {}/{} epoch {}/{} loss {:.4f} lr {:.2e} {:.0f} img/s ETA {}\x1b[K",
             std::string(filled, '#'), std::string(width - filled, '.'), step, total_, epoch + 1,
             (total_ + per_epoch_ - 1) / per_epoch_, loss, lr, rate * batch_size_, duration(eta));
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

}  // namespace jepa::train
