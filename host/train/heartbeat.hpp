// A run's heartbeat, written from its own thread and its own database connection every few
// seconds for as long as the run is in this process, through training, checkpoints and long
// evaluations alike. A RUNNING run whose heartbeat stops is therefore dead, never merely busy,
// and may be marked KILLED by whoever notices (jepa runs, jepa sweep --resume).
#pragma once

#include "store/store.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace jepa::train {

class Heartbeat {
 public:
  // `open` makes the thread's own writer (a store connection: the trainer's may be inside a
  // transaction at any moment), called in the thread.
  Heartbeat(std::function<std::unique_ptr<store::Recorder>()> open, int64_t run_id, double interval_seconds = 10.0);
  ~Heartbeat();  // stops and joins; never throws
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;
  void set_step(int64_t step) { step_.store(step); }

 private:
  void loop();
  std::function<std::unique_ptr<store::Recorder>()> open_;
  int64_t run_id_;
  double interval_;
  std::atomic<int64_t> step_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace jepa::train
