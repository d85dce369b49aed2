// The live progress line of a training run: step, epoch, loss, lr, images/s and ETA, redrawn in
// place when stderr is a terminal; silent otherwise (logs and CI stay clean).
#pragma once

#include <cstdint>

namespace jepa::train {

class Progress {
 public:
  Progress(bool enabled, int64_t total_steps, int64_t steps_per_epoch, int64_t start_step, int64_t batch_size);
  void update(int64_t step, int64_t epoch, double loss, double lr, double now);
  void finish();

 private:
  bool enabled_;
  int64_t total_;
  int64_t per_epoch_;
  int64_t start_step_;
  int64_t batch_size_;
  double start_time_ = -1;
  double last_draw_ = -1;
  bool drawn_ = false;
};

}  // namespace jepa::train
