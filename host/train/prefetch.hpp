// Batches made ready for the step ahead of it, on a thread of their own: the loader's next batch,
// its masks (sampled by the masking plugin, off the training thread's critical path), and for a
// CUDA run the images and mask indices copied to the GPU on a side stream, so that the transfer of
// batch N+1 overlaps step N's compute and the training thread never waits for one. A CUDA run's
// loader hands over 8-bit pixels in pinned, pooled blocks: a quarter of the bytes of floats cross
// the bus, and the GPU normalises them (on the side stream too); the block goes back to the pool
// as soon as its copy is done.
#pragma once

#include "data/dataset.hpp"
#include "train/step.hpp"

#include <c10/core/Event.h>
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace jepa::train {

struct ReadyBatch {
  data::Batch batch;                   // the loader's batch (its labels, indices, epoch; the CPU images' owner)
  torch::Tensor images;                // [B, C, H, W] fp32: on the GPU for a CUDA run, else a view of batch
  StepMasks masks;                     // for step `step`; its index tensors on the run's device for a CUDA run
  int64_t step = 0;                    // the 0-based iteration this batch trains
  std::shared_ptr<c10::Event> copied;  // CUDA: recorded on the side stream after the copies
};

// Pinned host memory on `device`'s GPU (for the loader's pool on a CUDA run): blocks are
// allocated from whichever loader thread needs one, after making that GPU the thread's own.
data::BufferPool::Allocate pinned_allocator(c10::Device device);

class BatchPrefetcher {
 public:
  // Takes batches from `loader` (only this object's thread calls loader.next() from now on) for
  // the steps first_step, first_step + 1, ...; at most `depth` ready batches wait.
  // `normalisation` turns a CUDA batch's 8-bit pixels into the model's inputs.
  BatchPrefetcher(data::EpochLoader& loader, TrainStep& step, int64_t first_step, c10::Device device,
                  const data::Normalisation& normalisation, int depth = 2);
  ~BatchPrefetcher();  // stops and joins the thread
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // The next batch in order, or std::nullopt at the end of the epoch; rethrows what the loader or
  // the masking plugin threw, at the batch where it happened. For a CUDA run the calling thread's
  // current stream is made to wait for the batch's copies (a device-side wait, not a host one).
  std::optional<ReadyBatch> next();

 private:
  void produce();

  data::EpochLoader& loader_;
  TrainStep& step_;
  int64_t next_step_;
  c10::Device device_;
  data::Normalisation normalisation_;
  size_t depth_;

  std::mutex mutex_;
  std::condition_variable space_;  // the producer: a slot is free, or stop
  std::condition_variable ready_;  // the consumer: a batch, the end, or an error
  std::deque<ReadyBatch> queue_;
  bool done_ = false;  // the producer has nothing more (end of epoch or error)
  bool stopping_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace jepa::train
