// Batches made ready for the step ahead of it, on a thread of their own: the loader's next batch,
// its masks (sampled by the masking plugin, off the training thread's critical path), and for a
// CUDA run the images and mask indices in pinned host memory, so that the step's copies to the
// GPU are asynchronous and the training thread never waits for a transfer.
#pragma once

#include "data/dataset.hpp"
#include "train/step.hpp"

#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

namespace jepa::train {

struct ReadyBatch {
  data::Batch batch;     // the loader's batch (its labels, indices, epoch; the CPU images' owner)
  torch::Tensor images;  // [B, C, H, W] fp32 on the CPU: pinned for a CUDA run, else a view of batch
  StepMasks masks;       // for step `step`
  int64_t step = 0;      // the 0-based iteration this batch trains
};

class BatchPrefetcher {
 public:
  // Takes batches from `loader` (only this object's thread calls loader.next() from now on) for
  // the steps first_step, first_step + 1, ...; at most `depth` ready batches wait.
  BatchPrefetcher(data::EpochLoader& loader, TrainStep& step, int64_t first_step, bool pinned, int depth = 2);
  ~BatchPrefetcher();  // stops and joins the thread
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // The next batch in order, or std::nullopt at the end of the epoch; rethrows what the loader or
  // the masking plugin threw, at the batch where it happened.
  std::optional<ReadyBatch> next();

 private:
  void produce();

  data::EpochLoader& loader_;
  TrainStep& step_;
  int64_t next_step_;
  bool pinned_;
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
