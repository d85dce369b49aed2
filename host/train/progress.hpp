// Progress of a training run: step, epoch, loss, lr, images/s and ETA. On a terminal, a line
// redrawn in place (at most 4 times a second); elsewhere (a log file, CI, nohup, a SLURM job, a
// sweep trial's log) a plain line every `interval` seconds and at the last step, as tqdm and
// Lightning do, so a log shows that training is alive and how far it is.
#pragma once

#include <cstdint>

namespace jepa::train {

class Progress {
 public:
  // interval_s <= 0: JEPA_PROGRESS_INTERVAL seconds when set, else 30 (a few lines a minute).
  Progress(bool enabled, int64_t total_steps, int64_t steps_per_epoch, int64_t start_step, int64_t batch_size,
           double interval_s = 0);
  void update(int64_t step, int64_t epoch, double loss, double lr, double now);
  void finish();

 private:
  bool enabled_;
  bool terminal_;
  double interval_;
  int64_t total_;
  int64_t per_epoch_;
  int64_t start_step_;
  int64_t batch_size_;
  double start_time_ = -1;
  double last_draw_ = -1;
  bool drawn_ = false;
};

}  // namespace jepa::train
