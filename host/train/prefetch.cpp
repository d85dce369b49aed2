#include "train/prefetch.hpp"

#include "train/evaluation.hpp"

#include <torch/torch.h>

#include <cstring>

namespace jepa::train {

BatchPrefetcher::BatchPrefetcher(data::EpochLoader& loader, TrainStep& step, int64_t first_step, bool pinned, int depth)
    : loader_(loader),
      step_(step),
      next_step_(first_step),
      pinned_(pinned),
      depth_(static_cast<size_t>(std::max(1, depth))),
      thread_([this] { produce(); }) {}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  space_.notify_all();
  thread_.join();
}

void BatchPrefetcher::produce() {
  try {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        space_.wait(lock, [&] { return stopping_ || queue_.size() < depth_; });
        if (stopping_) return;
      }
      std::optional<data::Batch> batch = loader_.next();
      if (!batch) break;
      ReadyBatch r;
      r.step = next_step_++;
      r.batch = std::move(*batch);
      r.masks = step_.prepare_masks(static_cast<int>(r.batch.batch_size), r.step);
      const torch::Tensor view = images_tensor(r.batch);
      if (pinned_) {
        // From the CUDA caching host allocator: its blocks are reused once the copies that read
        // them have finished, so the pinned buffers cost one allocation each, not one per batch.
        r.images = torch::empty(view.sizes(), view.options().pinned_memory(true));
        std::memcpy(r.images.data_ptr<float>(), view.data_ptr<float>(), static_cast<size_t>(view.numel()) * 4);
      } else {
        r.images = view;  // points into r.batch.images, which moves with it (a vector keeps its buffer)
      }
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(r));
      ready_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = true;
  ready_.notify_all();
}

std::optional<ReadyBatch> BatchPrefetcher::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (queue_.empty()) {
    if (error_) std::rethrow_exception(error_);
    return std::nullopt;
  }
  ReadyBatch r = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  space_.notify_all();
  return r;
}

}  // namespace jepa::train
