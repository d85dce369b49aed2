#include "train/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace jepa::train {

namespace {

std::string duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

double interval_from_env() {
  if (const char* v = std::getenv("JEPA_PROGRESS_INTERVAL"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const double s = std::strtod(v, &end);
    if (end != v && s > 0) return s;
  }
  return 30.0;
}

}  // namespace

Progress::Progress(bool enabled, int64_t total_steps, int64_t steps_per_epoch, int64_t start_step, int64_t batch_size,
                   double interval_s)
    : enabled_(enabled),
      terminal_(::isatty(STDERR_FILENO) != 0),
      interval_(interval_s > 0 ? interval_s : interval_from_env()),
      total_(std::max<int64_t>(1, total_steps)),
      per_epoch_(std::max<int64_t>(1, steps_per_epoch)),
      start_step_(start_step),
      batch_size_(batch_size) {}

void Progress::update(int64_t step, int64_t epoch, double loss, double lr, double now) {
  if (!enabled_) return;
  if (start_time_ < 0) start_time_ = now;
  const bool last = step >= total_;
  if (terminal_) {
    // Redraw at most 4 times a second: terminal output is not free.
    if (last_draw_ >= 0 && now - last_draw_ < 0.25 && !last) return;
  } else if (!last && now - (last_draw_ >= 0 ? last_draw_ : start_time_) < interval_) {
    return;
  }
  last_draw_ = now;
  const double elapsed = now - start_time_;
  const int64_t done = step - start_step_;
  const double rate = elapsed > 0 ? done / elapsed : 0.0;  // steps per second
  const double eta = rate > 0 ? (total_ - step) / rate : 0.0;
  const int64_t epochs = (total_ + per_epoch_ - 1) / per_epoch_;
  if (!terminal_) {
    fmt::print(stderr, "step {}/{} ({:.1f}%) epoch {}/{} loss {:.4f} lr {:.2e} {:.0f} img/s elapsed {} ETA {}\n", step,
               total_, 100.0 * static_cast<double>(step) / total_, epoch + 1, epochs, loss, lr, rate * batch_size_,
               duration(elapsed), duration(eta));
    std::fflush(stderr);
    return;
  }
  const int width = 24;
  const int filled = static_cast<int>(width * static_cast<double>(step) / total_);
  fmt::print(stderr, "\r[{}{}] step {}/{} epoch {}/{} loss {:.4f} lr {:.2e} {:.0f} img/s ETA {}\x1b[K",
             std::string(filled, '#'), std::string(width - filled, '.'), step, total_, epoch + 1, epochs, loss, lr,
             rate * batch_size_, duration(eta));
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

}  // namespace jepa::train
