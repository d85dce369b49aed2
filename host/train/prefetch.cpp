#include "train/prefetch.hpp"

#include "train/evaluation.hpp"

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/torch.h>

#include <cstring>

namespace jepa::train {

namespace {

const c10::impl::DeviceGuardImplInterface& cuda() {
  return *c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
}

}  // namespace

BatchPrefetcher::BatchPrefetcher(data::EpochLoader& loader, TrainStep& step, int64_t first_step, c10::Device device,
                                 int depth)
    : loader_(loader),
      step_(step),
      next_step_(first_step),
      device_(device),
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
    // A new thread's current device is GPU 0: pinned allocations and streams here would put a
    // context on another rank's GPU (as PyTorch's pin-memory thread, set the rank's own first).
    if (device_.is_cuda()) cuda().setDevice(device_);
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
      if (device_.is_cuda()) {
        // From the CUDA caching host allocator: its blocks are reused once the copies that read
        // them have finished, so the pinned buffers cost one allocation each, not one per batch.
        auto pinned = torch::empty(view.sizes(), view.options().pinned_memory(true));
        std::memcpy(pinned.data_ptr<float>(), view.data_ptr<float>(), static_cast<size_t>(view.numel()) * 4);
        // On a side stream, so that the transfer runs while the GPU computes the step before.
        // The destinations are allocated on the side stream; next() marks them used on the
        // training stream too, so that the allocator does not reuse them early.
        const c10::Stream side = cuda().getStreamFromGlobalPool(device_);
        c10::StreamGuard on_side(side);
        r.images = pinned.to(device_, /*non_blocking=*/true);
        r.masks.context = r.masks.context.to(device_, /*non_blocking=*/true);
        r.masks.target = r.masks.target.to(device_, /*non_blocking=*/true);
        r.copied = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
        r.copied->record(side);
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
  if (r.copied) {
    const c10::Stream training = cuda().getStream(device_);
    r.copied->block(training);
    for (auto* t : {&r.images, &r.masks.context, &r.masks.target}) t->record_stream(training);
  }
  return r;
}

}  // namespace jepa::train
