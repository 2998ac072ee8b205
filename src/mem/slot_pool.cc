#include "s3rdmafs/mem/slot_pool.h"

namespace s3rdmafs::mem {

void SlotPool::Slot::Reset() {
  if (data_) pool_->Return(data_);
  data_ = nullptr;
}

SlotPool::SlotPool(std::byte* base, uint64_t size, uint64_t slot_size) : slot_size_(slot_size) {
  for (uint64_t at = 0; slot_size && at + slot_size <= size; at += slot_size)
    free_.push_back(base + at);
  total_ = free_.size();
}

SlotPool::Slot SlotPool::TryAcquire() {
  std::lock_guard lock(mu_);
  if (free_.empty()) return Slot();
  std::byte* d = free_.back();
  free_.pop_back();
  return Slot(this, d);
}

SlotPool::Slot SlotPool::Acquire(std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  if (!freed_.wait_for(lock, wait, [this] { return !free_.empty(); })) return Slot();
  std::byte* d = free_.back();
  free_.pop_back();
  return Slot(this, d);
}

size_t SlotPool::free_count() const {
  std::lock_guard lock(mu_);
  return free_.size();
}

void SlotPool::Return(std::byte* data) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(data);
  }
  freed_.notify_one();
}

}  // namespace s3rdmafs::mem
