#include "s3rdmafs/cache/block_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

using namespace s3rdmafs;
using cache::BlockCache;

namespace {
constexpr uint32_t kBlock = 4096;
struct Arena {
  std::vector<std::byte> mem;
  explicit Arena(size_t blocks) : mem(blocks * kBlock) {}
};
}  // namespace

TEST(BlockCache, MissFillHitEvict) {
  Arena a(2);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock);
  auto x = c.Acquire({1, 0});
  ASSERT_TRUE(x);
  EXPECT_EQ(x->state, BlockCache::Acquired::kMustFill);
  c.Complete(x->block.get(), 100u);
  x->block.Reset();
  auto again = c.Acquire({1, 0});
  EXPECT_EQ(again->state, BlockCache::Acquired::kHit);
  EXPECT_EQ(again->block->length(), 100u);
  again->block.Reset();
  // Two more keys into a 2-block cache: the least recently used one goes.
  auto y = c.Acquire({1, 1});
  c.Complete(y->block.get(), 1u);
  y->block.Reset();
  auto z = c.Acquire({1, 2});
  c.Complete(z->block.get(), 1u);
  z->block.Reset();
  EXPECT_FALSE(c.LookupValid({1, 0}));
  EXPECT_TRUE(c.LookupValid({1, 2}));
  EXPECT_EQ(c.Stats().evictions, 1u);
}

TEST(BlockCache, PinnedBlocksAreNeverEvicted) {
  Arena a(2);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock);
  auto x = c.Acquire({1, 0});
  auto y = c.Acquire({1, 1});
  auto z = c.Acquire({1, 2});
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().code, Errc::kNoSpace);
  std::chrono::steady_clock::time_point retry_at;
  auto w = c.AcquireOrNotify(
      {1, 2}, [] {}, &retry_at);
  EXPECT_FALSE(w);
  EXPECT_EQ(retry_at, std::chrono::steady_clock::time_point::max()) << "no hold will end by itself";
}

TEST(BlockCache, FailedFillIsSeenByWaitersAndRetriedAfter) {
  Arena a(4);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock);
  auto filler = c.Acquire({7, 0});
  auto reader = c.Acquire({7, 0});
  EXPECT_EQ(reader->state, BlockCache::Acquired::kLoading);
  std::promise<Result<uint32_t>> seen;
  c.OnReady(reader->block, [&seen](Result<uint32_t> r) { seen.set_value(std::move(r)); });
  std::thread t([&] { c.Complete(filler->block.get(), MakeError(Errc::kConnection, "boom")); });
  auto r = seen.get_future().get();
  t.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kConnection);
  filler->block.Reset();
  reader->block.Reset();
  auto retry = c.Acquire({7, 0});
  EXPECT_EQ(retry->state, BlockCache::Acquired::kMustFill);
  EXPECT_EQ(c.Stats().blocks_free + c.Stats().blocks_evictable, 3u);
}

TEST(BlockCache, AWaiterIsCalledWhenAPinDropsOnAnotherThread) {
  Arena a(1);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock);
  auto x = c.Acquire({1, 0});
  c.Complete(x->block.get(), 1u);
  std::promise<void> woken;
  std::chrono::steady_clock::time_point retry_at;
  ASSERT_FALSE(c.AcquireOrNotify(
      {1, 1}, [&woken] { woken.set_value(); }, &retry_at));
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    x->block.Reset();
  });
  ASSERT_EQ(woken.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  t.join();
  auto y = c.Acquire({1, 1});
  ASSERT_TRUE(y);
  EXPECT_EQ(y->state, BlockCache::Acquired::kMustFill);
}

// Releases a filled, pinned block with a reader's wish for it.
void Release(BlockCache& c, Result<BlockCache::Acquisition>& acq, cache::Retention r) {
  if (acq->state == BlockCache::Acquired::kMustFill) c.Complete(acq->block.get(), 1u);
  acq->block.SetRetention(r);
  acq->block.Reset();
}

TEST(BlockCache, HeldBlocksWaitOutTheirHoldBeforeDemandEvictsThem) {
  using namespace std::chrono;
  Arena a(2);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock, milliseconds(200));
  auto x = c.Acquire({1, 0});
  Release(c, x, cache::Retention::kHold);
  auto y = c.Acquire({1, 1});
  Release(c, y, cache::Retention::kHold);
  EXPECT_EQ(c.Stats().blocks_held, 2u);
  auto now = c.Acquire({1, 2});
  ASSERT_FALSE(now) << "a held block is not evicted while its stream may come back";
  steady_clock::time_point retry_at;
  const auto start = steady_clock::now();
  ASSERT_FALSE(c.AcquireOrNotify(
      {1, 2}, [] {}, &retry_at));
  EXPECT_GE(retry_at - start, milliseconds(150)) << "the oldest hold ends about `hold` from now";
  EXPECT_LE(retry_at - start, milliseconds(250));
  std::this_thread::sleep_until(retry_at);
  auto later = c.Acquire({1, 2});
  ASSERT_TRUE(later);
  EXPECT_FALSE(c.LookupValid({1, 0})) << "the oldest held block went first";
  EXPECT_TRUE(c.LookupValid({1, 1}));
  EXPECT_EQ(c.Stats().held_evictions, 1u);
}

TEST(BlockCache, ReadAfterAHoldPutsTheBlockBackOnTheLru) {
  Arena a(2);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock, std::chrono::seconds(60));
  auto x = c.Acquire({1, 0});
  Release(c, x, cache::Retention::kHold);
  auto again = c.Acquire({1, 0});
  EXPECT_EQ(again->state, BlockCache::Acquired::kHit);
  // A fill's own pin (no wish) released after the reader's keeps the
  // reader's wish: here, read to its end.
  auto filler = c.Acquire({1, 1});
  auto reader = c.Acquire({1, 1});
  c.Complete(filler->block.get(), 1u);
  reader->block.SetRetention(cache::Retention::kLru);
  reader->block.Reset();
  filler->block.Reset();
  Release(c, again, cache::Retention::kLru);
  auto s = c.Stats();
  EXPECT_EQ(s.blocks_held, 0u);
  EXPECT_EQ(s.blocks_evictable, 2u);
}

TEST(BlockCache, ReadAheadTakesNoHeldBlockAndAtMostHalfTheCache) {
  Arena a(4);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock, std::chrono::milliseconds(0));
  auto p0 = c.AcquireForPrefetch({1, 0});
  auto p1 = c.AcquireForPrefetch({1, 1});
  ASSERT_TRUE(p0 && p1);
  EXPECT_EQ(p0->state, BlockCache::Acquired::kMustFill);
  Release(c, p0, cache::Retention::kUnset);
  Release(c, p1, cache::Retention::kUnset);
  EXPECT_EQ(c.Stats().blocks_held, 2u) << "read-ahead blocks are held until read";
  EXPECT_FALSE(c.AcquireForPrefetch({1, 2})) << "half the cache is read-ahead's share";
  auto present = c.AcquireForPrefetch({1, 0});
  ASSERT_TRUE(present);
  EXPECT_EQ(present->state, BlockCache::Acquired::kHit);
  EXPECT_FALSE(present->block) << "nothing to fill: no pin";
  auto used = c.Acquire({1, 0});
  EXPECT_EQ(used->state, BlockCache::Acquired::kHit);
  Release(c, used, cache::Retention::kLru);
  EXPECT_EQ(c.Stats().prefetch_used, 1u);
  // Two free blocks and one LRU block: read-ahead gets one more (its share)
  // from them, never the held {1, 1} even though its hold is over.
  auto p2 = c.AcquireForPrefetch({1, 2});
  ASSERT_TRUE(p2);
  Release(c, p2, cache::Retention::kUnset);
  EXPECT_FALSE(c.AcquireForPrefetch({1, 3}));
  EXPECT_TRUE(c.LookupValid({1, 1}));
  EXPECT_EQ(c.Stats().prefetch_refused, 2u);
}

TEST(BlockCache, ReadAheadEvictedUnreadIsCountedAsWasted) {
  Arena a(2);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock, std::chrono::milliseconds(0));
  auto p = c.AcquireForPrefetch({1, 0});
  Release(c, p, cache::Retention::kUnset);
  auto d0 = c.Acquire({2, 0});
  auto d1 = c.Acquire({2, 1});
  ASSERT_TRUE(d0 && d1) << "demand evicts a held block once its hold is over";
  EXPECT_EQ(c.Stats().prefetch_wasted, 1u);
  EXPECT_EQ(c.Stats().prefetch_used, 0u);
}

template <typename Pins>
size_t Distinct(const Pins& pins) {
  std::set<cache::Block*> blocks;
  for (auto& [k, p] : pins) blocks.insert(p.get());
  return blocks.size();
}

// Random operations against a model: a block's contents always belong to its
// key, pins protect blocks, and the number of blocks never changes.
TEST(BlockCache, ModelBasedRandomOps) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Arena a(8);
  // No hold: a held block is evictable at once, so demand is refused only
  // when every block is pinned, as without holds.
  BlockCache c(a.mem.data(), a.mem.size(), kBlock, std::chrono::milliseconds(0));
  std::vector<std::pair<cache::BlockKey, cache::PinnedBlock>> pins;
  auto stamp = [](const cache::BlockKey& k) {
    return static_cast<uint8_t>(k.object_id * 31 + k.index * 7);
  };
  for (int step = 0; step < 20000; ++step) {
    int op = rng() % 4;
    if (op == 3) {  // read-ahead: fill and release at once
      cache::BlockKey k{rng() % 3 + 1, rng() % 12};
      auto r = c.AcquireForPrefetch(k);
      if (r && r->state == BlockCache::Acquired::kMustFill) {
        memset(r->block->data(), stamp(k), kBlock);
        c.Complete(r->block.get(), kBlock);
      }
    } else if (op == 0 || pins.empty()) {
      cache::BlockKey k{rng() % 3 + 1, rng() % 12};
      auto r = c.Acquire(k);
      if (!r) {
        ASSERT_EQ(Distinct(pins), 8u) << "kNoSpace only when every block is pinned";
        continue;
      }
      if (r->state == BlockCache::Acquired::kMustFill) {
        memset(r->block->data(), stamp(k), kBlock);
        c.Complete(r->block.get(), kBlock);
      } else {
        ASSERT_EQ(r->state, BlockCache::Acquired::kHit);
        ASSERT_EQ(static_cast<uint8_t>(r->block->data()[rng() % kBlock]), stamp(k));
      }
      ASSERT_EQ(r->block->key(), k);
      pins.emplace_back(k, std::move(r->block));
    } else {
      size_t i = rng() % pins.size();
      ASSERT_EQ(static_cast<uint8_t>(pins[i].second->data()[0]), stamp(pins[i].first));
      pins[i].second.SetRetention(static_cast<cache::Retention>(rng() % 3));
      pins.erase(pins.begin() + i);
    }
    auto s = c.Stats();
    ASSERT_EQ(s.blocks_free + s.blocks_evictable + s.blocks_held + Distinct(pins), 8u)
        << "no block lost or duplicated";
  }
  pins.clear();
  auto s = c.Stats();
  EXPECT_EQ(s.blocks_free + s.blocks_evictable + s.blocks_held, 8u);
}

// A streaming read's blocks stay next to each other in the arena after the
// cache has churned (so one RDMA token can name a run of them): a block goes
// right after its predecessor's when that one is free or evictable.
TEST(BlockCache, ConsecutiveBlocksOfAnObjectLieNextToEachOther) {
  constexpr size_t kBlocks = 32;
  Arena a(kBlocks);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock);
  // Fill the cache from two interleaved objects, then read a third one end to end.
  for (uint64_t i = 0; i < kBlocks / 2; ++i)
    for (uint64_t object : {1, 2}) {
      auto x = c.Acquire({object, i * 7});  // never consecutive: no neighbour to follow
      ASSERT_TRUE(x);
      c.Complete(x->block.get(), kBlock);
    }
  // Touch them in a random order: the LRU order no longer follows the arena's.
  std::vector<cache::BlockKey> keys;
  for (uint64_t i = 0; i < kBlocks / 2; ++i)
    for (uint64_t object : {1, 2}) keys.push_back({object, i * 7});
  std::shuffle(keys.begin(), keys.end(), std::mt19937(5));
  for (auto& k : keys) {
    auto x = c.Acquire(k);
    ASSERT_EQ(x->state, BlockCache::Acquired::kHit);
  }
  std::byte* last = nullptr;
  size_t adjacent = 0;
  for (uint64_t i = 0; i < 24; ++i) {
    auto x = c.Acquire({3, i});
    ASSERT_TRUE(x);
    ASSERT_EQ(x->state, BlockCache::Acquired::kMustFill);
    if (last && x->block->data() == last + kBlock) ++adjacent;
    last = x->block->data();
    c.Complete(x->block.get(), kBlock);
  }
  // All but where the run reaches the arena's end and starts again elsewhere.
  EXPECT_GE(adjacent, 20u) << "blocks follow their predecessors";
}
