// The official I-JEPA per-iteration schedules, as pure functions of the step (so a resumed run
// needs nothing but the step counter). T = int(ipe * epochs * ipe_scale).
#pragma once

#include <cstdint>

namespace jepa::train {

struct ScheduleConfig {
  int64_t iterations_per_epoch = 1;
  int64_t epochs = 1;
  double ipe_scale = 1.0;
  double start_lr = 2e-4;
  double lr = 1e-3;
  double final_lr = 1e-6;
  double warmup_epochs = 40;
  double weight_decay = 0.04;
  double final_weight_decay = 0.4;
  double ema_start = 0.996;
  double ema_end = 1.0;
};

class Schedules {
 public:
  explicit Schedules(const ScheduleConfig& c);

  // Upstream advances the schedulers before each step and counts from 1: the first step
  // (step index 0) uses lr_at(1).
  double lr_at(int64_t counter) const;            // linear warmup, then cosine to final_lr
  double weight_decay_at(int64_t counter) const;  // cosine-shaped increase to final_weight_decay
  // EMA momentum for step index i (0-based): linear from ema_start to ema_end over T.
  double momentum_at(int64_t i) const;

  int64_t total_steps() const { return total_; }
  int64_t iterations_per_epoch() const { return c_.iterations_per_epoch; }
  int64_t warmup_steps() const { return warmup_; }

 private:
  ScheduleConfig c_;
  int64_t total_;
  int64_t warmup_;
};

}  // namespace jepa::train
