// The epoch loader. Work is cut into "chunks": chunk k holds the items that batch k would hold if
// nothing were corrupt (the rank's order, sliced by batch_size). Workers take one image at a time,
// in order, from the oldest chunks (at most `prefetch` chunks ahead of the consumer), and write it
// into that item's fixed slot of the chunk's pooled block, so every worker helps finish the batch
// the consumer waits for. The consumer takes chunks strictly in order once all their items are
// done; with no corrupt item a chunk's block becomes the batch without a copy; after a corrupt
// item the following batches are filled by copying from the next chunks, so the result depends
// only on (seed, epoch), never on thread timing.
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
  // A chunk being decoded: one slot per item in a pooled block.
  struct Chunk {
    std::shared_ptr<uint8_t> block;
    int64_t first = 0;  // position in `order` of the first item
    int64_t items = 0;
    int64_t pending = 0;  // items not decoded yet
    std::vector<uint8_t> ok;
    std::exception_ptr error;  // the exception of the earliest failed item
    int64_t error_slot = 0;
  };
  // A finished chunk: its good items packed at the front of the block, in order.
  struct Packed {
    std::shared_ptr<uint8_t> block;
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
        pool(options.pool ? options.pool : BufferPool::create()),
        epoch(ep),
        order(rank_order(source->size(), options, ep)),
        total_batches(EpochLoader::batches_per_epoch(source->size(), options)),
        num_chunks((static_cast<int64_t>(order.size()) + options.batch_size - 1) / options.batch_size),
        slot_bytes(prepared.values_per_image() * (options.normalise ? sizeof(float) : sizeof(uint8_t))),
        next_batch(std::max<int64_t>(start_batch, 0)),
        next_take(next_batch),
        next_item(std::min<int64_t>(next_batch * options.batch_size, static_cast<int64_t>(order.size()))) {
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

  // The chunk holding position k of the order, made (with its block) by the first claim of it.
  Chunk& chunk_of(int64_t k) {
    const int64_t c = k / options.batch_size;
    auto it = chunks.find(c);
    if (it != chunks.end()) return it->second;
    Chunk chunk;
    chunk.first = c * options.batch_size;
    chunk.items = std::min<int64_t>(options.batch_size, static_cast<int64_t>(order.size()) - chunk.first);
    chunk.pending = chunk.items;
    chunk.ok.assign(static_cast<size_t>(chunk.items), 0);
    chunk.block = pool->acquire(static_cast<size_t>(chunk.items) * slot_bytes);
    return chunks.emplace(c, std::move(chunk)).first->second;
  }

  // Decodes position k of the order into its slot; true when the image was readable.
  bool decode(int64_t k, uint8_t* slot) const {
    const int64_t index = order[static_cast<size_t>(k)];
    detail::SamplePlan plan;
    const std::optional<Image> image = source->load_window(index, [&](int height, int width) {
      plan = prepared.plan(height, width, options.seed, epoch, index);
      return plan.region();
    });
    if (!image) return false;
    if (options.normalise) {
      prepared.apply(*image, plan, reinterpret_cast<float*>(slot), nullptr);
    } else {
      prepared.apply(*image, plan, nullptr, slot);
    }
    return true;
  }

  // Decodes position k into `chunk` and records the outcome; called with `lock` held, releases it
  // while decoding.
  void decode_and_record(Chunk& chunk, int64_t k, std::unique_lock<std::mutex>& lock) {
    const int64_t slot = k - chunk.first;
    uint8_t* at = chunk.block.get() + static_cast<size_t>(slot) * slot_bytes;
    lock.unlock();
    bool ok = false;
    std::exception_ptr error;
    if (!stopping_relaxed.load(std::memory_order_relaxed)) {
      try {
        ok = decode(k, at);
      } catch (...) {
        error = std::current_exception();
      }
    }
    lock.lock();
    chunk.ok[static_cast<size_t>(slot)] = ok ? 1 : 0;
    if (error) {
      if (!chunk.error || slot < chunk.error_slot) {
        chunk.error = error;
        chunk.error_slot = slot;
      }
    }
    if (--chunk.pending == 0) ready_cv.notify_all();
  }

  bool claimable() const {
    return next_item < static_cast<int64_t>(order.size()) &&
           next_item / options.batch_size < next_take + std::max(1, options.prefetch);
  }

  void worker_loop() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      // Items after a failed one are still decoded (a few, within the window): the consumer must
      // see each chunk complete to rethrow at the right batch.
      work_cv.wait(lock, [&] { return stopping || claimable(); });
      if (stopping) return;
      const int64_t k = next_item++;
      Chunk& chunk = chunk_of(k);
      decode_and_record(chunk, k, lock);
    }
  }

  // Chunk c once all its items are done (decoded here when there are no workers), packed.
  Packed take(int64_t c) {
    std::unique_lock<std::mutex> lock(mutex);
    if (workers.empty()) {
      for (int64_t k = c * options.batch_size;
           k < std::min<int64_t>((c + 1) * options.batch_size, static_cast<int64_t>(order.size())); ++k) {
        next_item = k + 1;
        decode_and_record(chunk_of(k), k, lock);
      }
    } else {
      ready_cv.wait(lock, [&] {
        auto it = chunks.find(c);
        return it != chunks.end() && it->second.pending == 0;
      });
    }
    Chunk chunk = std::move(chunks.extract(c).mapped());
    ++next_take;
    lock.unlock();
    work_cv.notify_all();  // the window moved: the next chunk may be claimed
    return pack(std::move(chunk));
  }

  Packed pack(Chunk chunk) const {
    Packed p;
    p.error = chunk.error;
    p.block = std::move(chunk.block);
    int64_t kept = 0;
    for (int64_t slot = 0; slot < chunk.items; ++slot) {
      const int64_t index = order[static_cast<size_t>(chunk.first + slot)];
      if (chunk.ok[static_cast<size_t>(slot)] == 0) {
        if (!p.error) p.corrupt.push_back(source->describe(index));
        continue;
      }
      if (kept != slot) {
        std::memmove(p.block.get() + static_cast<size_t>(kept) * slot_bytes,
                     p.block.get() + static_cast<size_t>(slot) * slot_bytes, slot_bytes);
      }
      p.labels.push_back(source->label(index));
      p.indices.push_back(index);
      ++kept;
    }
    return p;
  }

  std::optional<Batch> next() {
    if (error) std::rethrow_exception(error);
    if (next_batch >= total_batches) return std::nullopt;
    const int64_t bs = options.batch_size;
    Batch batch;
    std::shared_ptr<uint8_t> block;  // the batch's pixels
    int64_t have = 0;
    for (;;) {
      if (have == bs) break;
      if (!current || position == current->count()) {
        current.reset();
        if (next_take >= num_chunks) break;  // the order is exhausted
        Packed chunk = take(next_take);
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
          block = std::move(current->block);
          batch.labels = std::move(current->labels);
          batch.indices = std::move(current->indices);
          have = bs;
          current.reset();
          break;
        }
        continue;
      }
      const int64_t take_n = std::min(bs - have, current->count() - position);
      if (!block) block = pool->acquire(static_cast<size_t>(bs) * slot_bytes);
      std::memcpy(block.get() + static_cast<size_t>(have) * slot_bytes,
                  current->block.get() + static_cast<size_t>(position) * slot_bytes,
                  static_cast<size_t>(take_n) * slot_bytes);
      batch.labels.insert(batch.labels.end(), current->labels.begin() + position,
                          current->labels.begin() + position + take_n);
      batch.indices.insert(batch.indices.end(), current->indices.begin() + position,
                           current->indices.begin() + position + take_n);
      position += take_n;
      have += take_n;
    }
    // Corrupt items can leave the last batch short: dropped under drop_last, as any partial batch.
    if (have == 0 || (have < bs && options.drop_last)) {
      next_batch = total_batches;
      return std::nullopt;
    }
    const size_t values = static_cast<size_t>(have) * prepared.values_per_image();
    if (options.normalise) {
      batch.images = PixelArray<float>(std::move(block), values);
    } else {
      batch.pixels = PixelArray<uint8_t>(std::move(block), values);
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
  std::shared_ptr<BufferPool> pool;
  int64_t epoch;
  std::vector<int64_t> order;  // this rank's items, in epoch order
  int64_t total_batches;
  int64_t num_chunks;
  size_t slot_bytes;  // one image

  // Consumer state (only the thread calling next() touches it).
  int64_t next_batch;
  std::optional<Packed> current;  // the chunk being drained, with `position` items used
  int64_t position = 0;
  std::exception_ptr error;
  std::atomic<int64_t> skipped_count{0};

  // Shared with the workers, under `mutex`.
  std::mutex mutex;
  std::condition_variable work_cv;   // workers: an item may be claimed, or stop
  std::condition_variable ready_cv;  // consumer: a chunk is complete
  int64_t next_take;                 // the chunk the consumer takes next
  int64_t next_item;                 // the next position of `order` a worker decodes
  std::map<int64_t, Chunk> chunks;   // claimed, not yet taken
  bool stopping = false;
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

Batch load_range(const ImageSource& source, const Transform& transform, int64_t begin, int64_t end, int threads) {
  if (begin < 0 || end < begin || end > source.size()) {
    throw std::out_of_range(fmt::format("load_range: [{}, {}) outside [0, {})", begin, end, source.size()));
  }
  Transform plain = transform;
  plain.random_crop = false;
  const detail::PreparedTransform prepared(plain, source.channels());
  const size_t per_image = prepared.values_per_image();
  const int64_t n = end - begin;

  // Each item decodes into its own slot (threads take items one at a time), then the good ones
  // are packed in order.
  auto block = BufferPool::create()->acquire(std::max<size_t>(1, static_cast<size_t>(n) * per_image * sizeof(float)));
  auto* values = reinterpret_cast<float*>(block.get());
  std::vector<uint8_t> ok(static_cast<size_t>(n), 0);
  std::atomic<int64_t> next{0};
  const auto decode = [&] {
    for (int64_t k = next++; k < n; k = next++) {
      detail::SamplePlan plan;
      const std::optional<Image> image = source.load_window(begin + k, [&](int height, int width) {
        plan = prepared.plan(height, width, 0, 0, begin + k);
        return plan.region();
      });
      if (!image) continue;
      prepared.apply(*image, plan, values + static_cast<size_t>(k) * per_image, nullptr);
      ok[static_cast<size_t>(k)] = 1;
    }
  };
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t pool_size = std::min<int64_t>(threads > 0 ? threads : cores, n / 16);
  if (pool_size <= 1) {
    decode();
  } else {
    std::vector<std::exception_ptr> errors(static_cast<size_t>(pool_size));
    std::vector<std::thread> pool;
    for (int64_t t = 0; t < pool_size; ++t) {
      pool.emplace_back([&, t] {
        try {
          decode();
        } catch (...) {
          errors[static_cast<size_t>(t)] = std::current_exception();
          next = n;  // the others stop too
        }
      });
    }
    for (auto& thread : pool) thread.join();
    for (const auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }

  Batch batch;
  int64_t kept = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (!ok[static_cast<size_t>(k)]) {
      warn_corrupt(source.describe(begin + k));
      continue;
    }
    if (kept != k) {
      std::memmove(values + static_cast<size_t>(kept) * per_image, values + static_cast<size_t>(k) * per_image,
                   per_image * sizeof(float));
    }
    batch.labels.push_back(source.label(begin + k));
    batch.indices.push_back(begin + k);
    ++kept;
  }
  batch.images = PixelArray<float>(std::move(block), static_cast<size_t>(kept) * per_image);
  batch.batch_size = kept;
  batch.channels = prepared.channels();
  batch.height = prepared.image_size();
  batch.width = prepared.image_size();
  return batch;
}

int auto_workers(int cores_for_rank, bool cuda) {
  const int share = std::max(1, cores_for_rank);
  return cuda ? std::max(1, share - 1) : std::max(2, share / 4);
}

}  // namespace jepa::data
