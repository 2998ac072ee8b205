#include <gtest/gtest.h>

#include <random>

#include "s3rdmafs/readahead/policy.h"

using namespace s3rdmafs::readahead;

namespace {
constexpr uint64_t MiB = 1 << 20;
PolicyConfig Cfg() { return PolicyConfig{2 * MiB, 16 * MiB, 1 * MiB, 4}; }
}  // namespace

TEST(ReadaheadPolicy, SequentialFromStartGrowsGeometricallyToCap) {
  Policy p(Cfg());
  uint64_t file = 1024 * MiB, off = 0, planned_to = 0, last_size = 0;
  std::vector<uint64_t> sizes;
  for (int i = 0; i < 2000; ++i, off += 128 * 1024) {
    Plan plan = p.OnRead(off, 128 * 1024, file);
    if (plan.empty()) continue;
    EXPECT_GE(plan.begin, planned_to) << "never plans a range twice";
    planned_to = plan.end;
    sizes.push_back(plan.end - plan.begin);
    last_size = plan.end - plan.begin;
    EXPECT_LE(plan.end - (off + 128 * 1024), 16 * MiB) << "never more than max ahead of the reader";
  }
  ASSERT_GE(sizes.size(), 4u);
  EXPECT_LT(sizes[0], sizes[2]);
  EXPECT_LE(last_size, 16 * MiB);
  EXPECT_GE(planned_to, off) << "read-ahead kept ahead of the reader";
}

TEST(ReadaheadPolicy, RandomReadsPrefetchNothing) {
  Policy p(Cfg());
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    uint64_t off = (rng() % 1000 + 10) * 4 * MiB;
    Plan plan = p.OnRead(off, 4096, 8192 * MiB);
    EXPECT_TRUE(plan.empty());
    EXPECT_FALSE(plan.sequential);
  }
}

// A cache that cannot take a whole window: what was not fetched is planned
// again, and the window shrinks (to the tolerance at least) until it fits.
TEST(ReadaheadPolicy, ShortfallReplansTheRestFromSmallerWindows) {
  Policy p(Cfg());
  const uint64_t file = 1024 * MiB, step = 128 * 1024;
  uint64_t off = 0;
  std::vector<uint64_t> sizes;
  for (int i = 0; i < 400; ++i, off += step) {
    Plan plan = p.OnRead(off, step, file);
    EXPECT_TRUE(plan.sequential);
    if (plan.empty()) continue;
    // The cache always has room for one block beyond what was asked.
    uint64_t reached = std::min(plan.end, plan.begin + 1 * MiB);
    EXPECT_LE(plan.begin, off + step + 1 * MiB) << "the unfetched rest is planned again";
    sizes.push_back(plan.end - plan.begin);
    p.Shortfall(plan, reached);
  }
  ASSERT_GE(sizes.size(), 10u);
  EXPECT_LE(sizes.back(), 2 * MiB) << "windows shrank to what the cache takes";
  EXPECT_GE(p.streams()[0].window, 1 * MiB);
}

TEST(ReadaheadPolicy, SecondSequentialReadStartsAStreamAnywhere) {
  Policy p(Cfg());
  EXPECT_TRUE(p.OnRead(100 * MiB, 128 * 1024, 1024 * MiB).empty());
  Plan plan = p.OnRead(100 * MiB + 128 * 1024, 128 * 1024, 1024 * MiB);
  EXPECT_FALSE(plan.empty());
  EXPECT_EQ(plan.begin, 100 * MiB + 256 * 1024);
}

TEST(ReadaheadPolicy, ToleratesShortBackwardSeeksAndOutOfOrderRequests) {
  Policy p(Cfg());
  p.OnRead(0, 128 * 1024, 1024 * MiB);
  p.OnRead(256 * 1024, 128 * 1024, 1024 * MiB);  // a request overtook another
  p.OnRead(128 * 1024, 128 * 1024, 1024 * MiB);
  EXPECT_EQ(p.streams().size(), 1u);
}

TEST(ReadaheadPolicy, SeveralReadersOfOneFileKeepTheirOwnStreams) {
  Policy p(Cfg());
  uint64_t a = 0, b = 500 * MiB;
  p.OnRead(b, 128 * 1024, 1024 * MiB);
  for (int i = 0; i < 100; ++i) {
    p.OnRead(a, 128 * 1024, 1024 * MiB);
    p.OnRead(b + 128 * 1024, 128 * 1024, 1024 * MiB);
    a += 128 * 1024;
    b += 128 * 1024;
  }
  ASSERT_EQ(p.streams().size(), 2u);
  for (auto& s : p.streams()) EXPECT_GT(s.window, 2 * MiB);
}

TEST(ReadaheadPolicy, ClampsToFileSize) {
  Policy p(Cfg());
  Plan plan = p.OnRead(0, 4096, 10000);
  EXPECT_LE(plan.end, 10000u);
  EXPECT_TRUE(p.OnRead(4096, 5904, 10000).empty());
}

// Random mixes of readers: whatever happens, the planned bytes beyond a
// stream's reader stay within max, and streams never exceed max_streams.
TEST(ReadaheadPolicy, ModelBasedBounds) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Policy p(Cfg());
  const uint64_t file = 4096 * MiB;
  std::vector<uint64_t> readers(6);
  for (auto& r : readers) r = (rng() % 4000) * MiB;
  for (int i = 0; i < 20000; ++i) {
    auto& r = readers[rng() % readers.size()];
    if (rng() % 50 == 0) r = (rng() % 4000) * MiB;  // random jump
    uint64_t len = 4096 + rng() % (1 * MiB);
    Plan plan = p.OnRead(r, len, file);
    if (!plan.empty()) {
      ASSERT_LE(plan.end, file);
      ASSERT_LE(plan.end - plan.begin, 16 * MiB);
      // A reader that rejoined its stream up to `tolerance` behind is still within max of the
      // stream.
      ASSERT_LE(plan.end, r + len + 1 * MiB + 16 * MiB);
    }
    ASSERT_LE(p.streams().size(), 4u);
    r = std::min(file - 1, r + len);
  }
}
