#include "train/prefetch.hpp"

#include "train/evaluation.hpp"

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <thread>

namespace jepa::train {

namespace {

const c10::impl::DeviceGuardImplInterface& cuda() {
  return *c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
}

}  // namespace

data::BufferPool::Allocate pinned_allocator(c10::Device device) {
  return [device](size_t bytes) {
    // Loader threads start on GPU 0: a context there would cost another rank's GPU memory.
    cuda().setDevice(device);
    torch::Tensor block =
        torch::empty({static_cast<int64_t>(bytes)}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
    void* data = block.data_ptr();
    return std::shared_ptr<void>(data, [block](void*) mutable { block.reset(); });
  };
}

BatchPrefetcher::BatchPrefetcher(data::EpochLoader& loader, TrainStep& step, int64_t first_step, c10::Device device,
                                 const data::Normalisation& normalisation, int depth)
    : loader_(loader),
      step_(step),
      next_step_(first_step),
      device_(device),
      normalisation_(normalisation),
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
    torch::Tensor gain;
    torch::Tensor bias;
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
      if (!device_.is_cuda()) {
        r.images = images_tensor(r.batch);  // a view of r.batch's pooled block, which it keeps alive
      } else {
        const data::Batch& b = r.batch;
        torch::Tensor host;
        if (!b.pixels.empty()) {
          host = torch::from_blob(b.pixels.data(), {b.batch_size, b.channels, b.height, b.width}, torch::kUInt8);
        } else {
          // A loader without a pinned pool (normalised floats): stage through pinned memory.
          const torch::Tensor view = images_tensor(r.batch);
          host = torch::empty(view.sizes(), view.options().pinned_memory(true));
          std::memcpy(host.data_ptr<float>(), view.data_ptr<float>(), static_cast<size_t>(view.numel()) * 4);
        }
        // On a side stream, so that the transfer runs while the GPU computes the step before.
        // The destinations are allocated on the side stream; next() marks them used on the
        // training stream too, so that the allocator does not reuse them early.
        const c10::Stream side = cuda().getStreamFromGlobalPool(device_);
        c10::StreamGuard on_side(side);
        const torch::Tensor on_gpu = host.to(device_, /*non_blocking=*/true);
        r.masks.context = r.masks.context.to(device_, /*non_blocking=*/true);
        r.masks.target = r.masks.target.to(device_, /*non_blocking=*/true);
        c10::Event host_read(c10::DeviceType::CUDA);
        host_read.record(side);
        if (on_gpu.scalar_type() == torch::kUInt8) {
          if (!gain.defined()) {
            const auto channels = static_cast<int64_t>(normalisation_.gain.size());
            gain = torch::tensor(normalisation_.gain).view({1, channels, 1, 1}).to(device_);
            bias = torch::tensor(normalisation_.bias).view({1, channels, 1, 1}).to(device_);
          }
          // x * gain + bias, the CPU loader's formula, in float32.
          r.images = torch::addcmul(bias, on_gpu.to(torch::kFloat32), gain);
        } else {
          r.images = on_gpu;
        }
        r.copied = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
        r.copied->record(side);
        // The pooled block may be refilled once the copy has read it; this thread waits for
        // that (the training thread does not), then gives the block back.
        while (!host_read.query()) std::this_thread::sleep_for(std::chrono::microseconds(50));
        r.batch.pixels.reset();
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
