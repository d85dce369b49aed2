#include "train/heartbeat.hpp"

#include <chrono>
#include <cstdio>
#include <exception>

namespace jepa::train {

Heartbeat::Heartbeat(std::function<std::unique_ptr<store::Recorder>()> open, int64_t run_id, double interval_seconds)
    : open_(std::move(open)), run_id_(run_id), interval_(interval_seconds), thread_([this] { loop(); }) {}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Heartbeat::loop() {
  try {
    const std::unique_ptr<store::Recorder> writer = open_();
    store::Recorder& store = *writer;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::duration<double>(interval_), [this] { return stop_; })) {
      lock.unlock();
      try {
        store.heartbeat(run_id_, step_.load());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "warning: heartbeat of run %lld not written: %s\n", static_cast<long long>(run_id_),
                     e.what());
      }
      lock.lock();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: no heartbeats for run %lld: %s\n", static_cast<long long>(run_id_), e.what());
  }
}

}  // namespace jepa::train
