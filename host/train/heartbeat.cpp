#include "train/heartbeat.hpp"

#include <chrono>
#include <cstdio>
#include <exception>

namespace jepa::train {

Heartbeat::Heartbeat(const std::filesystem::path& db, int64_t run_id, double interval_seconds)
    : db_(db), run_id_(run_id), interval_(interval_seconds), thread_([this] { loop(); }) {}

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
    // A connection of its own: the trainer's may be inside a transaction at any moment.
    store::Store store(db_);
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
