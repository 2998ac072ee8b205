// The page cache: the arena cut into fixed-size blocks, keyed by
// (object version, block index). An object version id is minted by the
// metadata layer for every (key, ETag) pair it sees, so a changed object is
// never served from old pages.
//
// Bookkeeping is intrusive and allocation-free (LevelDB's lists, plus one):
// every block is in exactly one of
//   - the free list (no key),
//   - the LRU list (valid, unpinned: evictable),
//   - the held list (valid, unpinned, still wanted by a sequential stream:
//     read-ahead fetched it and no one has read it yet, or its reader is
//     part-way through it),
//   - nowhere (pinned: in use by a reader or by an in-flight fetch),
// and, while it has a key, in the hash index.
//
// Why a held list: with more streams than the cache has room for, plain LRU
// evicts each stream's next block (or the rest of its current one) just
// before the stream gets there, and the bytes are fetched again - 30 readers
// on a 16 MiB cache fetched 4x what they read. A held block is evicted only
// once it has sat unused for `hold` (its stream stalled or went away); until
// then a demand read waits for a block rather than throw away bytes a reader
// will want within milliseconds. Read-ahead never takes a held block, and
// read-ahead's unused blocks (filling or held) are capped at half the cache,
// so demand always finds room.
//
// A PinnedBlock is a move-only RAII pin; while any pin exists the block is
// neither evicted nor reused. A FUSE reply that points into a block holds a pin
// until the reply has been written.
//
// Thread-safety: all methods may be called from any thread. One mutex guards
// the lists and the index; it is never held across I/O, a fetch submission or a
// FUSE reply (only across list/hash updates); nothing here waits.
#pragma once

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set.hpp>
#include <chrono>
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

// Where a block goes when its last pin is released: the held list while a
// sequential reader is part-way through it, the LRU list once any reader has
// read it to its end (or read it at random). kLru is final for the block's
// contents: parallel reads of its middle that finish last do not undo it. A
// fill's own pin says nothing.
enum class Retention : uint8_t { kUnset, kLru, kHold };

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
  bool held_ = false;                        // on the held list (else the LRU list) while unpinned
  Retention retention_ = Retention::kUnset;  // readers' wish for these contents
  bool prefetched_ = false;                  // filled by read-ahead and not yet read by anyone
  std::chrono::steady_clock::time_point idle_since_;  // last unpin (held list order)
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
  PinnedBlock(PinnedBlock&& o) noexcept
      : cache_(o.cache_), block_(o.block_), retention_(o.retention_) {
    o.block_ = nullptr;
  }
  PinnedBlock& operator=(PinnedBlock&& o) noexcept;
  PinnedBlock(const PinnedBlock&) = delete;
  PinnedBlock& operator=(const PinnedBlock&) = delete;
  ~PinnedBlock() { Reset(); }

  explicit operator bool() const { return block_ != nullptr; }
  Block* get() const { return block_; }
  Block* operator->() const { return block_; }
  // This reader's wish for the block once it is unpinned (see Retention).
  void SetRetention(Retention r) { retention_ = r; }
  void Reset();

 private:
  friend class BlockCache;
  PinnedBlock(BlockCache* cache, Block* block) : cache_(cache), block_(block) {}
  BlockCache* cache_ = nullptr;
  Block* block_ = nullptr;
  Retention retention_ = Retention::kUnset;
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t held_evictions = 0;  // of those, held blocks whose stream stalled past `hold`
  uint64_t failures = 0;
  uint64_t blocks_total = 0;
  uint64_t blocks_free = 0;
  uint64_t blocks_evictable = 0;
  uint64_t blocks_held = 0;
  uint64_t prefetch_used = 0;     // read-ahead blocks a reader then read
  uint64_t prefetch_wasted = 0;   // read-ahead blocks evicted before anyone read them
  uint64_t prefetch_refused = 0;  // read-ahead blocks not fetched: no room within its share
};

class BlockCache {
 public:
  enum class Acquired { kHit, kLoading, kMustFill };
  struct Acquisition {
    PinnedBlock block;
    Acquired state;
  };

  static constexpr std::chrono::milliseconds kDefaultHold{500};

  // `base` must stay valid for the cache's lifetime; arena_size / block_size
  // blocks are created. `hold`: how long a held block is kept from demand
  // reads once its stream stops touching it.
  BlockCache(std::byte* base, uint64_t arena_size, uint32_t block_size,
             std::chrono::milliseconds hold = kDefaultHold);
  ~BlockCache();

  uint32_t block_size() const { return block_size_; }

  // Pins the block for `key`. kMustFill: the block is new (state kLoading) and
  // the caller must call Complete() on it exactly once. kNoSpace when every
  // block is pinned.
  Result<Acquisition> Acquire(const BlockKey& key);
  // Like Acquire, but without blocking a thread: when no block can be taken
  // now (kNoSpace), `on_space` is kept and called once, from the thread of
  // the next unpin, outside the cache lock; *retry_at then says when a held
  // block becomes evictable by itself (time_point::max() if none will).
  // Every waiter is called at each unpin: it tries again and may wait again.
  Result<Acquisition> AcquireOrNotify(const BlockKey& key, std::function<void()> on_space,
                                      std::chrono::steady_clock::time_point* retry_at);
  // For read-ahead: takes only a free or LRU block (never a held one, never
  // waits), and only while read-ahead's unused blocks are under half the
  // cache. A block got this way is held once filled until someone reads it.
  Result<Acquisition> AcquireForPrefetch(const BlockKey& key);
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
  enum class Purpose { kDemand, kPrefetch };
  using TimePoint = std::chrono::steady_clock::time_point;
  void Unpin(Block* block, Retention retention);
  // kNoSpace when no block can be taken now; *retry_at then says when a held
  // block becomes evictable (TimePoint::max() if none will by itself).
  Result<Acquisition> AcquireLocked(const BlockKey& key, Purpose purpose, TimePoint* retry_at);
  Block* TakeVictimLocked(Purpose purpose, TimePoint* retry_at);
  Block* TakeNeighbourLocked(const BlockKey& key);
  void TouchLocked(Block& b);
  void ForgetPrefetchLocked(Block& b, bool wasted);

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
  const std::chrono::milliseconds hold_;
  std::vector<Block> blocks_;
  std::vector<Index::bucket_type> buckets_;
  mutable std::mutex mu_;
  LruList free_;                                      // guarded by mu_
  LruList lru_;                                       // guarded by mu_
  LruList held_;                                      // guarded by mu_; oldest idle first
  uint64_t prefetch_outstanding_ = 0;                 // guarded by mu_: blocks with prefetched_ set
  std::vector<std::function<void()>> space_waiters_;  // guarded by mu_
  Index index_;                                       // guarded by mu_
  CacheStats stats_;                                  // guarded by mu_
};

}  // namespace s3rdmafs::cache
