// The page cache: the arena cut into fixed-size blocks, keyed by
// (object version, block index). An object version id is minted by the
// metadata layer for every (key, ETag) pair it sees, so a changed object is
// never served from old pages.
//
// Bookkeeping is intrusive and allocation-free (LevelDB's two-list design):
// every block is in exactly one of
//   - the free list (no key),
//   - the LRU list (valid, unpinned: evictable),
//   - nowhere (pinned: in use by a reader or by an in-flight fetch),
// and, while it has a key, in the hash index.
//
// A PinnedBlock is a move-only RAII pin; while any pin exists the block is
// neither evicted nor reused. A FUSE reply that points into a block holds a pin
// until the reply has been written.
//
// Thread-safety: all methods may be called from any thread. One mutex guards
// the lists and the index; it is never held across I/O, a fetch submission or a
// FUSE reply (only across list/hash updates and condition waits).
#pragma once

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::cache {

namespace bi = boost::intrusive;

struct BlockKey {
  uint64_t object_id = 0;
  uint64_t index = 0;
  bool operator==(const BlockKey&) const = default;
};

enum class BlockState : uint8_t { kFree, kLoading, kValid, kFailed };

class Block {
 public:
  std::byte* data() const { return data_; }
  uint32_t length() const { return length_; }  // valid bytes once kValid
  const BlockKey& key() const { return key_; }

 private:
  friend class BlockCache;
  friend struct BlockKeyOf;
  bi::list_member_hook<> lru_hook_;
  bi::unordered_set_member_hook<> hash_hook_;
  BlockKey key_;
  BlockState state_ = BlockState::kFree;
  uint32_t pins_ = 0;
  uint32_t length_ = 0;
  std::byte* data_ = nullptr;
  std::unique_ptr<Error> error_;  // set when kFailed
  // Callbacks waiting for this fill (asynchronous readers); run by Complete()
  // after the cache lock is released.
  std::vector<std::function<void(Result<uint32_t>)>> waiters_;
};

class BlockCache;

class PinnedBlock {
 public:
  PinnedBlock() = default;
  PinnedBlock(PinnedBlock&& o) noexcept : cache_(o.cache_), block_(o.block_) { o.block_ = nullptr; }
  PinnedBlock& operator=(PinnedBlock&& o) noexcept;
  PinnedBlock(const PinnedBlock&) = delete;
  PinnedBlock& operator=(const PinnedBlock&) = delete;
  ~PinnedBlock() { Reset(); }

  explicit operator bool() const { return block_ != nullptr; }
  Block* get() const { return block_; }
  Block* operator->() const { return block_; }
  void Reset();

 private:
  friend class BlockCache;
  PinnedBlock(BlockCache* cache, Block* block) : cache_(cache), block_(block) {}
  BlockCache* cache_ = nullptr;
  Block* block_ = nullptr;
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t failures = 0;
  uint64_t blocks_total = 0;
  uint64_t blocks_free = 0;
  uint64_t blocks_evictable = 0;
};

class BlockCache {
 public:
  enum class Acquired { kHit, kLoading, kMustFill };
  struct Acquisition {
    PinnedBlock block;
    Acquired state;
  };

  // `base` must stay valid for the cache's lifetime; arena_size / block_size
  // blocks are created.
  BlockCache(std::byte* base, uint64_t arena_size, uint32_t block_size);
  ~BlockCache();

  uint32_t block_size() const { return block_size_; }

  // Pins the block for `key`. kMustFill: the block is new (state kLoading) and
  // the caller must call Complete() on it exactly once. kNoSpace when every
  // block is pinned.
  Result<Acquisition> Acquire(const BlockKey& key);
  // Like Acquire, but waits up to `timeout` for a block to become free.
  Result<Acquisition> AcquireWaiting(const BlockKey& key, std::chrono::milliseconds timeout);
  // Pins the block only if it is present and valid.
  PinnedBlock LookupValid(const BlockKey& key);
  // A second pin on an already pinned block (e.g. a fetch job's own pin, so
  // the block outlives a reader that gave up waiting).
  PinnedBlock AddPin(const PinnedBlock& pinned);

  // Ends a fill: `length` valid bytes, or the error every waiter will see.
  // A failed block leaves the index at once so the next reader retries.
  void Complete(Block* block, Result<uint32_t> length);

  // Calls `ready` once the pinned block is valid or failed: at once (on this
  // thread) if it already is, else on the thread that completes the fill.
  // The caller keeps its pin until `ready` has run.
  void OnReady(const PinnedBlock& block, std::function<void(Result<uint32_t>)> ready);

  CacheStats Stats() const;

 private:
  friend class PinnedBlock;
  void Unpin(Block* block);
  Result<Acquisition> AcquireLocked(const BlockKey& key);

  struct KeyHash {
    size_t operator()(const BlockKey& k) const {
      return (k.object_id * 0x9E3779B97F4A7C15ull) ^ (k.index * 0xC2B2AE3D27D4EB4Full);
    }
    size_t operator()(const Block& b) const { return (*this)(b.key_); }
  };
  struct KeyEqual {
    bool operator()(const Block& a, const Block& b) const { return a.key_ == b.key_; }
    bool operator()(const BlockKey& a, const Block& b) const { return a == b.key_; }
  };
  using LruList =
      bi::list<Block, bi::member_hook<Block, bi::list_member_hook<>, &Block::lru_hook_>>;
  using Index =
      bi::unordered_set<Block,
                        bi::member_hook<Block, bi::unordered_set_member_hook<>, &Block::hash_hook_>,
                        bi::hash<KeyHash>, bi::equal<KeyEqual>, bi::power_2_buckets<true>>;

  const uint32_t block_size_;
  std::vector<Block> blocks_;
  std::vector<Index::bucket_type> buckets_;
  mutable std::mutex mu_;
  std::condition_variable freed_;  // a block became free or evictable
  LruList free_;                   // guarded by mu_
  LruList lru_;                    // guarded by mu_
  Index index_;                    // guarded by mu_
  CacheStats stats_;               // guarded by mu_
};

}  // namespace s3rdmafs::cache
