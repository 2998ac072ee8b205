#include "s3rdmafs/cache/block_cache.h"

#include <bit>

namespace s3rdmafs::cache {

PinnedBlock& PinnedBlock::operator=(PinnedBlock&& o) noexcept {
  if (this != &o) {
    Reset();
    cache_ = o.cache_;
    block_ = o.block_;
    retention_ = o.retention_;
    o.block_ = nullptr;
  }
  return *this;
}

void PinnedBlock::Reset() {
  if (block_) cache_->Unpin(block_, retention_);
  block_ = nullptr;
  retention_ = Retention::kUnset;
}

namespace {
size_t BucketCount(size_t blocks) { return std::bit_ceil(blocks < 16 ? 16 : blocks * 2); }
}  // namespace

BlockCache::BlockCache(std::byte* base, uint64_t arena_size, uint32_t block_size,
                       std::chrono::milliseconds hold)
    : block_size_(block_size),
      hold_(hold),
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
  held_.clear();
  free_.clear();
}

// A pin on a block that was unpinned takes it off its list; a reader's
// first touch of a read-ahead block is the read-ahead paying off.
void BlockCache::TouchLocked(Block& b) {
  if (b.pins_++ == 0 && b.state_ == BlockState::kValid)
    (b.held_ ? held_ : lru_).erase(LruList::s_iterator_to(b));
  ++stats_.hits;
}

void BlockCache::ForgetPrefetchLocked(Block& b, bool wasted) {
  if (!b.prefetched_) return;
  b.prefetched_ = false;
  --prefetch_outstanding_;
  ++(wasted ? stats_.prefetch_wasted : stats_.prefetch_used);
}

Block* BlockCache::TakeVictimLocked(Purpose purpose, TimePoint* retry_at) {
  *retry_at = TimePoint::max();
  Block* b = nullptr;
  if (!free_.empty()) {
    b = &free_.front();
    free_.pop_front();
    return b;
  }
  if (!lru_.empty()) {
    b = &lru_.front();  // least recently used
    lru_.pop_front();
  } else if (purpose == Purpose::kDemand && !held_.empty()) {
    Block& oldest = held_.front();
    TimePoint evictable = oldest.idle_since_ + hold_;
    if (std::chrono::steady_clock::now() < evictable) {
      *retry_at = evictable;
      return nullptr;
    }
    b = &oldest;  // its stream stalled or went away
    ++stats_.held_evictions;
    held_.pop_front();
  } else {
    return nullptr;
  }
  index_.erase(index_.iterator_to(*b));
  ForgetPrefetchLocked(*b, true);
  ++stats_.evictions;
  return b;
}

// The block right after the one holding the previous block of the same
// object, if it can be had: free, or (when nothing is free, so some block is
// evicted anyway) unpinned on the LRU list. Then a streaming read's blocks
// stay next to each other in the arena even after the cache has churned,
// and the RDMA path names a whole run of them with one token.
Block* BlockCache::TakeNeighbourLocked(const BlockKey& key) {
  if (key.index == 0) return nullptr;
  auto prev = index_.find(BlockKey{key.object_id, key.index - 1}, KeyHash(), KeyEqual());
  if (prev == index_.end()) return nullptr;
  const size_t next = static_cast<size_t>(&*prev - blocks_.data()) + 1;
  if (next >= blocks_.size()) return nullptr;
  Block& b = blocks_[next];
  if (b.pins_ != 0) return nullptr;
  if (b.state_ == BlockState::kFree) {
    free_.erase(LruList::s_iterator_to(b));
    return &b;
  }
  if (b.state_ != BlockState::kValid || b.held_ || !free_.empty()) return nullptr;
  lru_.erase(LruList::s_iterator_to(b));
  index_.erase(index_.iterator_to(b));
  ForgetPrefetchLocked(b, true);
  ++stats_.evictions;
  return &b;
}

Result<BlockCache::Acquisition> BlockCache::AcquireLocked(const BlockKey& key, Purpose purpose,
                                                          TimePoint* retry_at) {
  *retry_at = TimePoint::max();
  auto it = index_.find(key, KeyHash(), KeyEqual());
  if (it != index_.end()) {
    Block& b = *it;
    const Acquired state = b.state_ == BlockState::kValid ? Acquired::kHit : Acquired::kLoading;
    // Read-ahead that finds the block there has nothing to do: no pin, and
    // the block keeps its place (a held block stays held).
    if (purpose == Purpose::kPrefetch) return Acquisition{PinnedBlock(), state};
    TouchLocked(b);
    ForgetPrefetchLocked(b, false);
    return Acquisition{PinnedBlock(this, &b), state};
  }
  if (purpose == Purpose::kPrefetch && prefetch_outstanding_ >= blocks_.size() / 2) {
    ++stats_.prefetch_refused;
    return MakeError(Errc::kNoSpace, "read-ahead already holds half of the cache");
  }
  Block* b = TakeNeighbourLocked(key);
  if (!b) b = TakeVictimLocked(purpose, retry_at);
  if (!b) {
    if (purpose == Purpose::kPrefetch) ++stats_.prefetch_refused;
    return MakeError(Errc::kNoSpace, "every cache block is in use");
  }
  ++stats_.misses;
  b->key_ = key;
  b->state_ = BlockState::kLoading;
  b->length_ = 0;
  b->error_.reset();
  b->retention_ = Retention::kUnset;
  b->pins_ = 1;
  if (purpose == Purpose::kPrefetch) {
    b->prefetched_ = true;
    ++prefetch_outstanding_;
  }
  index_.insert(*b);
  return Acquisition{PinnedBlock(this, b), Acquired::kMustFill};
}

Result<BlockCache::Acquisition> BlockCache::Acquire(const BlockKey& key) {
  std::lock_guard lock(mu_);
  TimePoint retry_at;
  return AcquireLocked(key, Purpose::kDemand, &retry_at);
}

Result<BlockCache::Acquisition> BlockCache::AcquireForPrefetch(const BlockKey& key) {
  std::lock_guard lock(mu_);
  TimePoint retry_at;
  return AcquireLocked(key, Purpose::kPrefetch, &retry_at);
}

Result<BlockCache::Acquisition> BlockCache::AcquireOrNotify(const BlockKey& key,
                                                            std::function<void()> on_space,
                                                            TimePoint* retry_at) {
  std::lock_guard lock(mu_);
  auto r = AcquireLocked(key, Purpose::kDemand, retry_at);
  if (!r && r.error().code == Errc::kNoSpace) space_waiters_.push_back(std::move(on_space));
  return r;
}

PinnedBlock BlockCache::LookupValid(const BlockKey& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key, KeyHash(), KeyEqual());
  if (it == index_.end() || it->state_ != BlockState::kValid) return {};
  Block& b = *it;
  TouchLocked(b);
  ForgetPrefetchLocked(b, false);
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

void BlockCache::Unpin(Block* b, Retention retention) {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mu_);
    // Once any reader has read a block to its end it is done with: later
    // wishes to hold it (parallel reads of its middle that finish last) lose.
    if (retention == Retention::kLru || b->retention_ == Retention::kUnset)
      b->retention_ = retention;
    if (--b->pins_ != 0) return;
    const bool hold = b->retention_ == Retention::kHold;
    if (b->state_ == BlockState::kValid) {
      b->held_ = hold || b->prefetched_;
      b->idle_since_ = std::chrono::steady_clock::now();
      (b->held_ ? held_ : lru_).push_back(*b);
    } else {  // failed (already unindexed) or never filled
      if (b->state_ == BlockState::kLoading) index_.erase(index_.iterator_to(*b));
      if (b->prefetched_) {  // a failed read-ahead: neither used nor wasted
        b->prefetched_ = false;
        --prefetch_outstanding_;
      }
      b->state_ = BlockState::kFree;
      b->error_.reset();
      free_.push_back(*b);
    }
    waiters.swap(space_waiters_);
  }
  for (auto& w : waiters) w();
}

CacheStats BlockCache::Stats() const {
  std::lock_guard lock(mu_);
  CacheStats s = stats_;
  s.blocks_free = free_.size();
  s.blocks_evictable = lru_.size();
  s.blocks_held = held_.size();
  return s;
}

}  // namespace s3rdmafs::cache
