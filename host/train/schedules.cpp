#include "train/schedules.hpp"

#include <algorithm>
#include <cmath>

namespace jepa::train {

namespace {
constexpr double kPi = 3.14159265358979323846;
}

Schedules::Schedules(const ScheduleConfig& c)
    : c_(c),
      total_(static_cast<int64_t>(c.ipe_scale * static_cast<double>(c.epochs * c.iterations_per_epoch))),
      warmup_(static_cast<int64_t>(c.warmup_epochs * static_cast<double>(c.iterations_per_epoch))) {}

double Schedules::lr_at(int64_t step) const {
  if (step < warmup_) {
    const double progress = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_));
    return c_.start_lr + progress * (c_.lr - c_.start_lr);
  }
  const int64_t t_max = total_ - warmup_;
  const double progress = static_cast<double>(step - warmup_) / static_cast<double>(std::max<int64_t>(1, t_max));
  return std::max(c_.final_lr, c_.final_lr + (c_.lr - c_.final_lr) * 0.5 * (1.0 + std::cos(kPi * progress)));
}

double Schedules::weight_decay_at(int64_t step) const {
  const double progress = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, total_));
  const double wd =
      c_.final_weight_decay + (c_.weight_decay - c_.final_weight_decay) * 0.5 * (1.0 + std::cos(kPi * progress));
  return c_.final_weight_decay <= c_.weight_decay ? std::max(c_.final_weight_decay, wd)
                                                  : std::min(c_.final_weight_decay, wd);
}

double Schedules::momentum_at(int64_t i) const {
  const double t = static_cast<double>(c_.iterations_per_epoch * c_.epochs) * c_.ipe_scale;
  return c_.ema_start + static_cast<double>(i) * (c_.ema_end - c_.ema_start) / t;
}

}  // namespace jepa::train
