// The epoch loader. Work is cut into "chunks": chunk k holds the items that batch k would hold if
// nothing were corrupt (the rank's order, sliced by batch_size). Workers decode whole chunks into
// their own buffers, at most `prefetch` chunks ahead of the consumer; the consumer assembles
// batches from the chunks strictly in chunk order. With no corrupt item a chunk's buffer becomes
// the batch without a copy; after a corrupt item the following batches are filled by copying from
// the next chunks, so the result depends only on (seed, epoch), never on thread timing.
#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "data/dataset.hpp"
#include "data/transform.hpp"

namespace jepa::data {
namespace {

void check_options(const LoaderOptions& options) {
  if (options.batch_size <= 0) throw std::invalid_argument("loader: batch_size must be positive");
  if (options.world_size <= 0) throw std::invalid_argument("loader: world_size must be positive");
  if (options.rank < 0 || options.rank >= options.world_size) {
    throw std::invalid_argument(
        fmt::format("loader: rank {} outside [0, world_size {})", options.rank, options.world_size));
  }
  if (options.workers < 0) throw std::invalid_argument("loader: workers must be >= 0");
  if (options.limit < 0) throw std::invalid_argument("loader: limit must be >= 0");
}

int64_t items_in_epoch(int64_t source_size, const LoaderOptions& options) {
  return options.limit > 0 ? std::min(options.limit, source_size) : source_size;
}

int64_t items_per_rank(int64_t source_size, const LoaderOptions& options) {
  const int64_t n = items_in_epoch(source_size, options);
  return (n + options.world_size - 1) / options.world_size;
}

// This rank's items of the epoch: the (shuffled) order padded to a multiple of world_size by
// repeating it from the start, then every world_size-th item from `rank`, as DistributedSampler.
std::vector<int64_t> rank_order(int64_t source_size, const LoaderOptions& options, int64_t epoch) {
  const int64_t n = items_in_epoch(source_size, options);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (options.shuffle && n > 1) {
    // Our own Fisher-Yates: std::shuffle's draws differ between standard libraries.
    std::mt19937_64 rng(detail::mix_seed(options.seed, static_cast<uint64_t>(epoch), 0x73687566666c65ULL));
    for (int64_t i = n - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(detail::uniform_below(rng, static_cast<uint64_t>(i) + 1));
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
  }
  const int64_t per_rank = items_per_rank(source_size, options);
  std::vector<int64_t> mine(static_cast<size_t>(per_rank));
  for (int64_t k = 0; k < per_rank; ++k) {
    const int64_t position = options.rank + k * options.world_size;
    mine[static_cast<size_t>(k)] = order[static_cast<size_t>(position % n)];
  }
  return mine;
}

void warn_corrupt(const std::string& what) {
  const std::string line = fmt::format("warning: skipping corrupt or unreadable image {}\n", what);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

struct EpochLoader::Impl {
  // A decoded chunk: its good items packed at the front of `images`, in order.
  struct Chunk {
    std::vector<float> images;
    std::vector<int64_t> labels;
    std::vector<int64_t> indices;
    std::vector<std::string> corrupt;  // describe() of each skipped item, warned when consumed
    std::exception_ptr error;
    int64_t count() const { return static_cast<int64_t>(labels.size()); }
  };

  Impl(std::shared_ptr<const ImageSource> src, const Transform& transform, const LoaderOptions& opts, int64_t ep,
       int64_t start_batch)
      : source(std::move(src)),
        prepared(transform, source->channels()),
        options(opts),
        epoch(ep),
        order(rank_order(source->size(), options, ep)),
        total_batches(EpochLoader::batches_per_epoch(source->size(), options)),
        num_chunks((static_cast<int64_t>(order.size()) + options.batch_size - 1) / options.batch_size),
        next_batch(std::max<int64_t>(start_batch, 0)),
        next_take(next_batch),
        next_claim(next_batch) {
    const int threads = options.workers;
    workers.reserve(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t) workers.emplace_back([this] { worker_loop(); });
  }

  ~Impl() {
    stopping_relaxed.store(true);
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    work_cv.notify_all();
    for (auto& worker : workers) worker.join();
  }

  // Decodes chunk `c`; exceptions are kept in the chunk for the consumer. Returns early (with a
  // partial chunk nobody will read) when the loader is being destroyed.
  Chunk produce(int64_t c) {
    Chunk chunk;
    try {
      const int64_t first = c * options.batch_size;
      const int64_t last = std::min<int64_t>(first + options.batch_size, static_cast<int64_t>(order.size()));
      const size_t per_image = prepared.floats_per_image();
      chunk.images.resize(static_cast<size_t>(last - first) * per_image);
      chunk.labels.reserve(static_cast<size_t>(last - first));
      chunk.indices.reserve(static_cast<size_t>(last - first));
      for (int64_t k = first; k < last; ++k) {
        if (stopping_relaxed.load(std::memory_order_relaxed)) break;
        const int64_t index = order[static_cast<size_t>(k)];
        const std::optional<Image> image = source->load(index);
        if (!image) {
          chunk.corrupt.push_back(source->describe(index));
          continue;
        }
        const auto box = prepared.crop_box(*image, options.seed, epoch, index);
        prepared.apply(*image, box, chunk.images.data() + chunk.labels.size() * per_image);
        chunk.labels.push_back(source->label(index));
        chunk.indices.push_back(index);
      }
      chunk.images.resize(chunk.labels.size() * per_image);
    } catch (...) {
      chunk.error = std::current_exception();
    }
    return chunk;
  }

  void worker_loop() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work_cv.wait(lock, [&] {
        return stopping || (!failed && next_claim < num_chunks && next_claim < next_take + prefetch());
      });
      if (stopping) return;
      const int64_t c = next_claim++;
      lock.unlock();
      Chunk chunk = produce(c);
      lock.lock();
      if (chunk.error) failed = true;  // later chunks would most likely fail the same way
      ready.emplace(c, std::move(chunk));
      ready_cv.notify_all();
    }
  }

  int64_t prefetch() const { return std::max(1, options.prefetch); }

  // The next chunk in order, decoded here or waited for.
  Chunk take() {
    const int64_t c = next_take;
    if (workers.empty()) {
      ++next_take;
      return produce(c);
    }
    std::unique_lock<std::mutex> lock(mutex);
    ready_cv.wait(lock, [&] { return ready.count(c) != 0; });
    auto node = ready.extract(c);
    ++next_take;
    lock.unlock();
    work_cv.notify_all();  // a buffer slot is free
    return std::move(node.mapped());
  }

  std::optional<Batch> next() {
    if (error) std::rethrow_exception(error);
    if (next_batch >= total_batches) return std::nullopt;
    const int64_t bs = options.batch_size;
    const size_t per_image = prepared.floats_per_image();
    Batch batch;
    for (;;) {
      const int64_t have = static_cast<int64_t>(batch.labels.size());
      if (have == bs) break;
      if (!current || position == current->count()) {
        current.reset();
        if (next_take >= num_chunks) break;  // the order is exhausted
        Chunk chunk = take();
        for (const auto& what : chunk.corrupt) warn_corrupt(what);
        skipped_count += static_cast<int64_t>(chunk.corrupt.size());
        if (chunk.error) {
          error = chunk.error;
          std::rethrow_exception(error);
        }
        current = std::move(chunk);
        position = 0;
        // The common case: a whole clean chunk is the batch, handed over without a copy.
        if (have == 0 && current->count() == bs) {
          batch.images = std::move(current->images);
          batch.labels = std::move(current->labels);
          batch.indices = std::move(current->indices);
          current.reset();
          break;
        }
        continue;
      }
      const int64_t take_n = std::min(bs - have, current->count() - position);
      if (batch.images.empty()) batch.images.reserve(static_cast<size_t>(bs) * per_image);
      const float* from = current->images.data() + static_cast<size_t>(position) * per_image;
      batch.images.insert(batch.images.end(), from, from + static_cast<size_t>(take_n) * per_image);
      batch.labels.insert(batch.labels.end(), current->labels.begin() + position,
                          current->labels.begin() + position + take_n);
      batch.indices.insert(batch.indices.end(), current->indices.begin() + position,
                           current->indices.begin() + position + take_n);
      position += take_n;
    }
    const auto have = static_cast<int64_t>(batch.labels.size());
    // Corrupt items can leave the last batch short: dropped under drop_last, as any partial batch.
    if (have == 0 || (have < bs && options.drop_last)) {
      next_batch = total_batches;
      return std::nullopt;
    }
    batch.batch_size = have;
    batch.channels = prepared.channels();
    batch.height = prepared.image_size();
    batch.width = prepared.image_size();
    batch.epoch = epoch;
    batch.batch_index = next_batch++;
    return batch;
  }

  std::shared_ptr<const ImageSource> source;
  detail::PreparedTransform prepared;
  LoaderOptions options;
  int64_t epoch;
  std::vector<int64_t> order;  // this rank's items, in epoch order
  int64_t total_batches;
  int64_t num_chunks;

  // Consumer state (only the thread calling next() touches it).
  int64_t next_batch;
  std::optional<Chunk> current;  // the chunk being drained, with `position` items used
  int64_t position = 0;
  std::exception_ptr error;
  std::atomic<int64_t> skipped_count{0};

  // Shared with the workers, under `mutex`.
  std::mutex mutex;
  std::condition_variable work_cv;   // workers: a chunk may be claimed, or stop
  std::condition_variable ready_cv;  // consumer: a chunk is decoded
  int64_t next_take;                 // chunks handed to the consumer so far (as an index)
  int64_t next_claim;                // next chunk a worker will decode
  std::map<int64_t, Chunk> ready;
  bool stopping = false;
  bool failed = false;
  std::atomic<bool> stopping_relaxed{false};  // read between images, so destruction is prompt
  std::vector<std::thread> workers;           // last: started after everything above exists
};

EpochLoader::EpochLoader(std::shared_ptr<const ImageSource> source, Transform transform, LoaderOptions options,
                         int64_t epoch, int64_t start_batch) {
  if (!source) throw std::invalid_argument("loader: no image source");
  check_options(options);
  impl_ = std::make_unique<Impl>(std::move(source), transform, options, epoch, start_batch);
}

EpochLoader::~EpochLoader() = default;

int64_t EpochLoader::batches_per_epoch(int64_t source_size, const LoaderOptions& options) {
  check_options(options);
  const int64_t m = items_per_rank(std::max<int64_t>(source_size, 0), options);
  return options.drop_last ? m / options.batch_size : (m + options.batch_size - 1) / options.batch_size;
}

std::optional<Batch> EpochLoader::next() {
  return impl_->next();
}

int64_t EpochLoader::skipped() const {
  return impl_->skipped_count.load();
}

Batch load_range(const ImageSource& source, const Transform& transform, int64_t begin, int64_t end) {
  if (begin < 0 || end < begin || end > source.size()) {
    throw std::out_of_range(fmt::format("load_range: [{}, {}) outside [0, {})", begin, end, source.size()));
  }
  Transform plain = transform;
  plain.random_crop = false;
  const detail::PreparedTransform prepared(plain, source.channels());
  const size_t per_image = prepared.floats_per_image();
  const int64_t n = end - begin;

  // Each item decodes into its own slot (in parallel for large ranges), then the good ones are
  // packed in order.
  Batch batch;
  batch.images.resize(static_cast<size_t>(n) * per_image);
  std::vector<uint8_t> ok(static_cast<size_t>(n), 0);
  const auto decode = [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const std::optional<Image> image = source.load(begin + k);
      if (!image) continue;
      prepared.apply(*image, prepared.crop_box(*image, 0, 0, begin + k),
                     batch.images.data() + static_cast<size_t>(k) * per_image);
      ok[static_cast<size_t>(k)] = 1;
    }
  };
  const int64_t threads =
      std::min<int64_t>({static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency())), 8, n / 64});
  if (threads <= 1) {
    decode(0, n);
  } else {
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    for (int64_t t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        try {
          decode(n * t / threads, n * (t + 1) / threads);
        } catch (...) {
          errors[static_cast<size_t>(t)] = std::current_exception();
        }
      });
    }
    for (auto& thread : pool) thread.join();
    for (const auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }

  int64_t kept = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (!ok[static_cast<size_t>(k)]) {
      warn_corrupt(source.describe(begin + k));
      continue;
    }
    if (kept != k) {
      std::memmove(batch.images.data() + static_cast<size_t>(kept) * per_image,
                   batch.images.data() + static_cast<size_t>(k) * per_image, per_image * sizeof(float));
    }
    batch.labels.push_back(source.label(begin + k));
    batch.indices.push_back(begin + k);
    ++kept;
  }
  batch.images.resize(static_cast<size_t>(kept) * per_image);
  batch.batch_size = kept;
  batch.channels = prepared.channels();
  batch.height = prepared.image_size();
  batch.width = prepared.image_size();
  return batch;
}

}  // namespace jepa::data
