#include "s3rdmafs/cache/block_cache.h"

#include <gtest/gtest.h>

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
  auto w = c.AcquireWaiting({1, 2}, std::chrono::milliseconds(20));
  EXPECT_FALSE(w);
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

TEST(BlockCache, AcquireWaitingWakesWhenAPinDrops) {
  Arena a(1);
  BlockCache c(a.mem.data(), a.mem.size(), kBlock);
  auto x = c.Acquire({1, 0});
  c.Complete(x->block.get(), 1u);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    x->block.Reset();
  });
  auto y = c.AcquireWaiting({1, 1}, std::chrono::seconds(5));
  t.join();
  ASSERT_TRUE(y);
  EXPECT_EQ(y->state, BlockCache::Acquired::kMustFill);
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
  BlockCache c(a.mem.data(), a.mem.size(), kBlock);
  std::vector<std::pair<cache::BlockKey, cache::PinnedBlock>> pins;
  auto stamp = [](const cache::BlockKey& k) {
    return static_cast<uint8_t>(k.object_id * 31 + k.index * 7);
  };
  for (int step = 0; step < 20000; ++step) {
    int op = rng() % 3;
    if (op == 0 || pins.empty()) {
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
      pins.erase(pins.begin() + i);
    }
    auto s = c.Stats();
    ASSERT_EQ(s.blocks_free + s.blocks_evictable + Distinct(pins), 8u)
        << "no block lost or duplicated";
  }
  pins.clear();
  auto s = c.Stats();
  EXPECT_EQ(s.blocks_free + s.blocks_evictable, 8u);
}
