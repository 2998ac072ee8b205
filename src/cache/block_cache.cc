#include "s3rdmafs/cache/block_cache.h"

#include <bit>

namespace s3rdmafs::cache {

PinnedBlock& PinnedBlock::operator=(PinnedBlock&& o) noexcept {
  if (this != &o) {
    Reset();
    cache_ = o.cache_;
    block_ = o.block_;
    o.block_ = nullptr;
  }
  return *this;
}

void PinnedBlock::Reset() {
  if (block_) cache_->Unpin(block_);
  block_ = nullptr;
}

namespace {
size_t BucketCount(size_t blocks) { return std::bit_ceil(blocks < 16 ? 16 : blocks * 2); }
}  // namespace

BlockCache::BlockCache(std::byte* base, uint64_t arena_size, uint32_t block_size)
    : block_size_(block_size),
      blocks_(arena_size / block_size),
      buckets_(BucketCount(arena_size / block_size)),
      index_(Index::bucket_traits(buckets_.data(), buckets_.size())) {
  for (size_t i = 0; i < blocks_.size(); ++i) {
    blocks_[i].data_ = base + i * static_cast<uint64_t>(block_size);
    free_.push_back(blocks_[i]);
  }
  stats_.blocks_total = blocks_.size();
}

BlockCache::~BlockCache() {
  index_.clear();
  lru_.clear();
  free_.clear();
}

Result<BlockCache::Acquisition> BlockCache::AcquireLocked(const BlockKey& key) {
  auto it = index_.find(key, KeyHash(), KeyEqual());
  if (it != index_.end()) {
    Block& b = *it;
    if (b.pins_++ == 0 && b.state_ == BlockState::kValid) lru_.erase(lru_.iterator_to(b));
    ++stats_.hits;
    return Acquisition{PinnedBlock(this, &b),
                       b.state_ == BlockState::kValid ? Acquired::kHit : Acquired::kLoading};
  }
  Block* b = nullptr;
  if (!free_.empty()) {
    b = &free_.front();
    free_.pop_front();
  } else if (!lru_.empty()) {
    b = &lru_.front();  // least recently used
    lru_.pop_front();
    index_.erase(index_.iterator_to(*b));
    ++stats_.evictions;
  } else {
    return MakeError(Errc::kNoSpace, "every cache block is in use");
  }
  ++stats_.misses;
  b->key_ = key;
  b->state_ = BlockState::kLoading;
  b->length_ = 0;
  b->error_.reset();
  b->pins_ = 1;
  index_.insert(*b);
  return Acquisition{PinnedBlock(this, b), Acquired::kMustFill};
}

Result<BlockCache::Acquisition> BlockCache::Acquire(const BlockKey& key) {
  std::lock_guard lock(mu_);
  return AcquireLocked(key);
}

Result<BlockCache::Acquisition> BlockCache::AcquireWaiting(const BlockKey& key,
                                                           std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  for (;;) {
    auto r = AcquireLocked(key);
    if (r || r.error().code != Errc::kNoSpace) return r;
    if (freed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      auto again = AcquireLocked(key);
      if (!again && again.error().code == Errc::kNoSpace)
        return MakeError(Errc::kNoSpace, "no cache block became free within " +
                                             std::to_string(timeout.count()) +
                                             " ms (cache.size too small for the load?)");
      return again;
    }
  }
}

PinnedBlock BlockCache::LookupValid(const BlockKey& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key, KeyHash(), KeyEqual());
  if (it == index_.end() || it->state_ != BlockState::kValid) return {};
  Block& b = *it;
  if (b.pins_++ == 0) lru_.erase(lru_.iterator_to(b));
  ++stats_.hits;
  return PinnedBlock(this, &b);
}

PinnedBlock BlockCache::AddPin(const PinnedBlock& pinned) {
  std::lock_guard lock(mu_);
  ++pinned.get()->pins_;
  return PinnedBlock(this, pinned.get());
}

void BlockCache::Complete(Block* b, Result<uint32_t> length) {
  std::vector<std::function<void(Result<uint32_t>)>> waiters;
  {
    std::lock_guard lock(mu_);
    waiters.swap(b->waiters_);
    if (length) {
      b->state_ = BlockState::kValid;
      b->length_ = *length;
    } else {
      b->state_ = BlockState::kFailed;
      b->error_ = std::make_unique<Error>(length.error());
      index_.erase(index_.iterator_to(*b));
      ++stats_.failures;
    }
  }
  for (auto& w : waiters) w(length);
}

void BlockCache::OnReady(const PinnedBlock& pinned, std::function<void(Result<uint32_t>)> ready) {
  Block* b = pinned.get();
  Result<uint32_t> now;
  {
    std::lock_guard lock(mu_);
    if (b->state_ == BlockState::kLoading) {
      b->waiters_.push_back(std::move(ready));
      return;
    }
    if (b->state_ == BlockState::kFailed)
      now = tl::unexpected<Error>(*b->error_);
    else
      now = b->length_;
  }
  ready(std::move(now));
}

void BlockCache::Unpin(Block* b) {
  bool freed = false;
  {
    std::lock_guard lock(mu_);
    if (--b->pins_ != 0) return;
    if (b->state_ == BlockState::kValid) {
      lru_.push_back(*b);
    } else {  // failed (already unindexed) or never filled
      if (b->state_ == BlockState::kLoading) index_.erase(index_.iterator_to(*b));
      b->state_ = BlockState::kFree;
      b->error_.reset();
      free_.push_back(*b);
    }
    freed = true;
  }
  if (freed) freed_.notify_one();
}

CacheStats BlockCache::Stats() const {
  std::lock_guard lock(mu_);
  CacheStats s = stats_;
  s.blocks_free = free_.size();
  s.blocks_evictable = lru_.size();
  return s;
}

}  // namespace s3rdmafs::cache
