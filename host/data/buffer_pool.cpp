// Batch memory reused across batches: a block goes back to the free list when its last holder
// drops it, through the deleter of the pointer acquire() hands out.
#include <cstdlib>
#include <new>

#include "data/dataset.hpp"

namespace jepa::data {
namespace {
constexpr size_t kMaxFree = 32;  // more free blocks than batches in flight are never needed
}  // namespace

BufferPool::BufferPool(Allocate allocate) : allocate_(std::move(allocate)) {
  if (!allocate_) {
    allocate_ = [](size_t bytes) {
      void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
      if (p == nullptr) throw std::bad_alloc();
      return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    };
  }
}

std::shared_ptr<BufferPool> BufferPool::create(Allocate allocate) {
  return std::shared_ptr<BufferPool>(new BufferPool(std::move(allocate)));
}

std::shared_ptr<uint8_t> BufferPool::acquire(size_t bytes) {
  std::shared_ptr<void> block;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->first == bytes) {
        block = std::move(it->second);
        free_.erase(it);
        break;
      }
    }
  }
  if (!block) {
    block = allocate_(bytes == 0 ? 1 : bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++made_;
  }
  auto* data = static_cast<uint8_t*>(block.get());
  // The handle owns the block; dropping it returns the block (if the pool still exists).
  std::weak_ptr<BufferPool> pool = weak_from_this();
  return std::shared_ptr<uint8_t>(data, [pool, bytes, block = std::move(block)](uint8_t*) mutable {
    if (auto p = pool.lock()) {
      std::lock_guard<std::mutex> lock(p->mutex_);
      if (p->free_.size() < kMaxFree) p->free_.emplace_back(bytes, std::move(block));
    }
  });
}

int64_t BufferPool::blocks_made() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return made_;
}

}  // namespace jepa::data
