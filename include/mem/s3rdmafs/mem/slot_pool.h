// Fixed-size slots cut from a region of the registered arena: the part
// buffers of the write path. A part is written into a slot and uploaded from
// it (by HTTP, or read by the server with RDMA READ), so write memory is
// bounded by configuration and is registered, like the page cache.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace s3rdmafs::mem {

class SlotPool {
 public:
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept : pool_(o.pool_), data_(o.data_) { o.data_ = nullptr; }
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        Reset();
        pool_ = o.pool_;
        data_ = o.data_;
        o.data_ = nullptr;
      }
      return *this;
    }
    ~Slot() { Reset(); }
    explicit operator bool() const { return data_ != nullptr; }
    std::byte* data() const { return data_; }
    void Reset();

   private:
    friend class SlotPool;
    Slot(SlotPool* pool, std::byte* data) : pool_(pool), data_(data) {}
    SlotPool* pool_ = nullptr;
    std::byte* data_ = nullptr;
  };

  SlotPool(std::byte* base, uint64_t size, uint64_t slot_size);

  Slot TryAcquire();                             // empty when none is free
  Slot Acquire(std::chrono::milliseconds wait);  // empty after `wait`
  uint64_t slot_size() const { return slot_size_; }
  size_t total() const { return total_; }
  size_t free_count() const;

 private:
  void Return(std::byte* data);
  const uint64_t slot_size_;
  size_t total_ = 0;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::byte*> free_;  // guarded by mu_
};

}  // namespace s3rdmafs::mem
