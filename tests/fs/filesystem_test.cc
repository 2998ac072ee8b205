// fs::Filesystem without a kernel: the fake store behind the real cache,
// read-ahead and metadata code.
#include "s3rdmafs/fs/filesystem.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "../lib/fake_store.h"

using namespace s3rdmafs;
using fakes::FakeStore;
using fakes::RampByte;

namespace {

constexpr uint32_t kBlock = 64 * 1024;

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(256); }
  void Make(size_t blocks, std::string prefix = "") {
    fs_.reset();
    fetcher_.reset();
    cache_.reset();
    arena_.assign(blocks * kBlock, std::byte{0});
    cache_ = std::make_unique<cache::BlockCache>(arena_.data(), arena_.size(), kBlock);
    fetcher_ = fetch::MakeHttpRangeFetcher(&store_);
    fs::FsOptions o;
    o.root_prefix = prefix;
    o.readahead = {2 * kBlock, 8 * kBlock, kBlock, 4};
    o.max_request = 4 * kBlock;
    o.cache_wait = std::chrono::milliseconds(2000);
    o.ttls.attr = o.ttls.entry = std::chrono::milliseconds(60000);
    o.object_attributes = object_attributes_;
    o.small_file_read = small_file_read_;
    o.listing = listing_;
    fs_ = std::make_unique<fs::Filesystem>(o, &store_, fetcher_.get(), cache_.get());
  }
  uint64_t LookupPath(const std::string& path) {
    uint64_t ino = meta::kRootIno;
    size_t pos = 0;
    while (pos < path.size()) {
      size_t slash = path.find('/', pos);
      std::string name =
          path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      auto e = fs_->Lookup(ino, name);
      if (!e) return 0;
      ino = e->attr.ino;
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    return ino;
  }
  std::string ReadAll(uint64_t fh, uint64_t off, size_t len) {
    auto r = fs_->Read(fh, off, len);
    EXPECT_TRUE(r) << r.error().ToString();
    std::string out;
    if (r)
      for (auto& v : r->iov) out.append(static_cast<char*>(v.iov_base), v.iov_len);
    return out;
  }
  static std::string Expected(uint64_t seed, uint64_t off, uint64_t len) {
    std::string s;
    for (uint64_t i = off; i < off + len; ++i) s.push_back(static_cast<char>(RampByte(seed, i)));
    return s;
  }
  std::vector<std::string> List(uint64_t ino, bool plus = true) {
    auto dh = fs_->OpenDir(ino);
    EXPECT_TRUE(dh);
    std::vector<std::string> names;
    uint64_t off = 0;
    for (;;) {
      size_t before = names.size();
      auto r = fs_->ReadDir(*dh, off, plus, [&](const fs::DirEntry& e) {
        if (names.size() - before == 7) return false;  // small "buffers" to exercise resumption
        names.emplace_back(e.name);
        off = e.next_offset;
        return true;
      });
      EXPECT_TRUE(r);
      if (names.size() == before) break;
    }
    fs_->ReleaseDir(*dh);
    return names;
  }

  bool object_attributes_ = false;  // LIST attributes are enough unless a test says so
  uint64_t small_file_read_ = 0;
  fs::FsOptions::Listing listing_ = fs::FsOptions::Listing::kRecords;
  FakeStore store_;
  std::vector<std::byte> arena_;
  std::unique_ptr<cache::BlockCache> cache_;
  std::unique_ptr<fetch::RangeFetcher> fetcher_;
  std::unique_ptr<fs::Filesystem> fs_;
};

}  // namespace

TEST_F(FsTest, LookupFilesDirsAndNegatives) {
  store_.Put("a.txt", 10);
  store_.Put("dir/b.txt", 10);
  store_.Put("marker/", 0);
  auto f = fs_->Lookup(meta::kRootIno, "a.txt");
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->attr.is_dir);
  EXPECT_EQ(f->attr.size, 10u);
  EXPECT_EQ(f->attr.mode, S_IFREG | 0444u);
  auto d = fs_->Lookup(meta::kRootIno, "dir");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->attr.is_dir);
  auto m = fs_->Lookup(meta::kRootIno, "marker");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->attr.is_dir);
  auto missing = fs_->Lookup(meta::kRootIno, "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  uint64_t heads = store_.heads;
  EXPECT_FALSE(fs_->Lookup(meta::kRootIno, "nope"));
  EXPECT_EQ(store_.heads, heads) << "negative entry served from cache";
  EXPECT_EQ(fs_->Lookup(meta::kRootIno, std::string(256, 'x')).error().code, Errc::kNameTooLong);
}

TEST_F(FsTest, DirectoryWinsOverSameNamedObject) {
  store_.Put("x", 5);
  store_.Put("x/y", 5);
  auto e = fs_->Lookup(meta::kRootIno, "x");
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->attr.is_dir);
  auto names = List(meta::kRootIno);
  EXPECT_EQ(std::count(names.begin(), names.end(), "x"), 1);
}

TEST_F(FsTest, ReadDirStreamsPagesAndSkipsUnusableNames) {
  for (int i = 0; i < 2500; ++i) store_.Put("big/f" + std::to_string(100000 + i), 1);
  store_.Put("big/sub/deeper", 1);
  store_.Put("big//double", 1);
  store_.Put("big/" + std::string(300, 'L'), 1);
  store_.Put("big/", 0);  // the directory's own marker is not an entry
  uint64_t big = LookupPath("big");
  ASSERT_NE(big, 0u);
  uint64_t lists = store_.lists;
  auto names = List(big);
  EXPECT_GE(store_.lists - lists, 3u) << "2500 keys arrive in 1000-key pages";
  ASSERT_EQ(names.size(), 2u + 2500u + 1u);
  EXPECT_EQ(names[0], ".");
  EXPECT_EQ(names[1], "..");
  std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size());
  EXPECT_TRUE(unique.count("sub"));
  EXPECT_FALSE(unique.count(""));
  // readdirplus entries carry attributes: no HEAD needed afterwards...
  uint64_t heads = store_.heads;
  auto e = fs_->Lookup(big, "f100007");
  ASSERT_TRUE(e);
  EXPECT_EQ(store_.heads, heads);
}

TEST_F(FsTest, ObjectAttributesCostOneHeadPerListedFile) {
  object_attributes_ = true;
  listing_ = fs::FsOptions::Listing::kHeads;
  Make(256);
  for (int i = 0; i < 5; ++i) store_.Put("d/f" + std::to_string(i), 1);
  uint64_t d = LookupPath("d");
  ASSERT_NE(d, 0u);
  uint64_t before = store_.heads;
  auto dh = fs_->OpenDir(d);
  ASSERT_TRUE(dh);
  int provisional = 0;
  ASSERT_TRUE(fs_->ReadDir(*dh, 0, true, [&](const fs::DirEntry& e) {
    provisional += e.attr_provisional;
    return true;
  }));
  fs_->ReleaseDir(*dh);
  EXPECT_EQ(provisional, 5) << "LIST has no x-amz-meta-*: the kernel must ask";
  EXPECT_EQ(store_.heads - before, 5u);
  // The listing started one background HEAD per file, so the LOOKUPs that
  // `ls -l` sends next find the attributes already there.
  uint64_t heads = store_.heads;
  auto e = fs_->Lookup(d, "f3");
  ASSERT_TRUE(e);
  EXPECT_EQ(store_.heads, heads) << "prefetched";
  EXPECT_TRUE(S_ISREG(e->attr.mode));
}

// Records mode in a directory no record vouches for: a few HEADs learn
// that its files carry no x-amz-meta-*, and the rest go out as regular
// files with the listing's attributes. One that is a symlink after all
// (another tool's) gets a new inode when its HEAD says so: the kernel never
// sees an inode change type, and ESTALE sends it to look the name up again.
TEST_F(FsTest, AListingGuessesRegularFilesAndAWrongGuessGetsANewInode) {
  object_attributes_ = true;
  Make(256);
  for (int i = 1; i <= 5; ++i) store_.Put("d/a" + std::to_string(i), 10);
  store_.PutWithMeta("d/zlink", "a1", {{"mode", std::to_string(S_IFLNK | 0777)}});
  uint64_t d = LookupPath("d");
  const uint64_t heads = store_.heads;
  std::map<std::string, fs::Attributes> seen;
  auto dh = fs_->OpenDir(d);
  ASSERT_TRUE(fs_->ReadDir(*dh, 0, true, [&](const fs::DirEntry& e) {
    EXPECT_FALSE(e.attr_provisional) << e.name;
    seen[std::string(e.name)] = e.attr;
    return true;
  }));
  fs_->ReleaseDir(*dh);
  EXPECT_EQ(store_.heads - heads, 4u) << "the sample, then no more";
  ASSERT_EQ(seen.size(), 8u);  // . .. a1-a5 zlink
  EXPECT_TRUE(S_ISREG(seen["a5"].mode));
  EXPECT_TRUE(S_ISREG(seen["zlink"].mode)) << "guessed";
  const uint64_t guessed = seen["zlink"].ino;
  auto a = fs_->GetAttr(guessed);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::kPreconditionFailed) << "ESTALE: not what the kernel holds";
  EXPECT_FALSE(fs_->Open(guessed, O_RDONLY));
  auto e = fs_->Lookup(d, "zlink");
  ASSERT_TRUE(e);
  EXPECT_NE(e->attr.ino, guessed);
  EXPECT_TRUE(S_ISLNK(e->attr.mode));
  auto target = fs_->Readlink(e->attr.ino);
  ASSERT_TRUE(target);
  EXPECT_EQ(*target, "a1");
  auto r = fs_->GetAttr(seen["a5"].ino);
  ASSERT_TRUE(r) << "a right guess stays";
  EXPECT_TRUE(S_ISREG(r->mode));
}

// After a readdirplus pass over the whole directory, a lookup of a name it
// did not list is answered without a request (for entry_ttl); a child the
// table drops meanwhile ends that.
TEST_F(FsTest, ALookupMissAfterAWholeListingAsksNothing) {
  for (int i = 0; i < 5; ++i) store_.Put("d/f" + std::to_string(i), 1);
  uint64_t d = LookupPath("d");
  auto list = [&] {
    auto dh = fs_->OpenDir(d);
    EXPECT_TRUE(fs_->ReadDir(*dh, 0, true, [](const fs::DirEntry&) { return true; }));
    fs_->ReleaseDir(*dh);
  };
  list();
  const uint64_t heads = store_.heads, lists = store_.lists, firsts = store_.head_with_bodies;
  auto miss = fs_->Lookup(d, "nope");
  ASSERT_FALSE(miss);
  EXPECT_EQ(miss.error().code, Errc::kNotFound);
  EXPECT_EQ(store_.heads + store_.lists + store_.head_with_bodies, heads + lists + firsts)
      << "the listing said it all";
  auto f3 = fs_->Lookup(d, "f3");
  ASSERT_TRUE(f3) << "and what it listed is there";
  store_.Put("d/late", 1);  // another client's new file: unseen for entry_ttl, as a negative entry
  EXPECT_FALSE(fs_->Lookup(d, "late"));
  // A child the table drops (the kernel forgot it) ends the shortcut.
  fs_->Forget(f3->attr.ino, 2);  // the listing's reference and the lookup's
  EXPECT_TRUE(fs_->Lookup(d, "late"));
  EXPECT_GT(store_.lists, lists);
  // So does entry_ttl.
  meta::Ttls short_ttls;
  short_ttls.entry = std::chrono::milliseconds(1);
  fs_->SetTtls(short_ttls);
  list();
  store_.Put("d/later", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(fs_->Lookup(d, "later")) << "past entry_ttl the store is asked again";
}

// A listed small file costs one request from lookup to last byte: the
// request that reads its attributes brings the whole object into the cache.
TEST_F(FsTest, ASmallListedFileIsOneRequestFromLookupToLastByte) {
  object_attributes_ = true;
  listing_ = fs::FsOptions::Listing::kHeads;
  small_file_read_ = 64 * 1024;
  Make(256);
  store_.Put("d/small", 5000, 7);
  store_.Put("d/large", 3 * kBlock, 8);
  uint64_t d = LookupPath("d");
  const uint64_t heads = store_.heads, with_bodies = store_.head_with_bodies;
  auto dh = fs_->OpenDir(d);
  ASSERT_TRUE(fs_->ReadDir(*dh, 0, true, [](const fs::DirEntry&) { return true; }));
  fs_->ReleaseDir(*dh);
  // The background attribute fetches, one per listed file.
  for (int i = 0; i < 200 && store_.heads - heads + store_.head_with_bodies - with_bodies < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(store_.head_with_bodies - with_bodies, 1u) << "the small one: attributes and bytes";
  EXPECT_EQ(store_.heads - heads, 1u) << "the large one: a HEAD, no bytes";
  const uint64_t gets = store_.gets;
  auto e = fs_->Lookup(d, "small");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->attr.size, 5000u);
  auto h = fs_->Open(e->attr.ino, O_RDONLY);
  ASSERT_TRUE(h);
  EXPECT_EQ(ReadAll(h->fh, 0, 10000), Expected(7, 0, 5000));
  fs_->Release(h->fh);
  EXPECT_EQ(store_.gets.load(), gets) << "read from the cache: no second request";
}

TEST_F(FsTest, PrefixMountSeesOnlyItsSubtree) {
  store_.Put("outside", 1);
  store_.Put("data/set/one", 3);
  Make(64, "data/set/");
  auto names = List(meta::kRootIno);
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "one"}));
  EXPECT_FALSE(fs_->Lookup(meta::kRootIno, "outside"));
}

TEST_F(FsTest, ReadsAreByteExactAcrossBlockBoundaries) {
  const std::vector<uint64_t> sizes = {0, 1, kBlock - 1, kBlock, kBlock + 1, 5 * kBlock + 17};
  for (uint64_t size : sizes) {
    std::string key = "f" + std::to_string(size);
    store_.Put(key, size, size % 13);
    uint64_t ino = LookupPath(key);
    auto h = fs_->Open(ino, O_RDONLY);
    ASSERT_TRUE(h);
    std::string all;
    for (uint64_t off = 0; off < size + 10000; off += 10000) all += ReadAll(h->fh, off, 10000);
    EXPECT_EQ(all, Expected(size % 13, 0, size)) << "size " << size;
    fs_->Release(h->fh);
  }
}

TEST_F(FsTest, RandomReadsMatchTheModel) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const uint64_t size = 40 * kBlock + 123;
  store_.Put("r", size, 5);
  Make(16);  // a small cache: eviction and refetch happen constantly
  auto h = fs_->Open(LookupPath("r"), O_RDONLY);
  ASSERT_TRUE(h);
  for (int i = 0; i < 500; ++i) {
    uint64_t off = rng() % (size + 100);
    size_t len = 1 + rng() % (3 * kBlock);
    uint64_t expect_len = off >= size ? 0 : std::min<uint64_t>(len, size - off);
    ASSERT_EQ(ReadAll(h->fh, off, len), Expected(5, off, expect_len))
        << "off " << off << " len " << len;
  }
}

TEST_F(FsTest, SequentialReadPrefetchesInLargeRequests) {
  store_.Put("seq", 64 * kBlock, 3);
  auto h = fs_->Open(LookupPath("seq"), O_RDONLY);
  for (uint64_t off = 0; off < 64 * kBlock; off += 32 * 1024)
    ASSERT_EQ(ReadAll(h->fh, off, 32 * 1024).size(), 32 * 1024u);
  EXPECT_LT(store_.gets.load(), 64u / 2) << "misses were merged into multi-block GETs";
  EXPECT_EQ(store_.bytes.load(), 64ull * kBlock) << "nothing fetched twice";
}

TEST_F(FsTest, ChangedObjectIsNeverServedFromOldPages) {
  store_.Put("v", 20 * kBlock, 1);
  uint64_t ino = LookupPath("v");
  auto h1 = fs_->Open(ino, O_RDONLY);
  EXPECT_EQ(ReadAll(h1->fh, 0, 100), Expected(1, 0, 100));
  store_.Put("v", 20 * kBlock, 9);  // new ETag, new bytes
  // Pages already cached for the opened version are still that version's...
  EXPECT_EQ(ReadAll(h1->fh, kBlock, 100), Expected(1, kBlock, 100));
  // ...but a miss (beyond the read-ahead) fails rather than mix versions.
  auto r = fs_->Read(h1->fh, 15 * kBlock, 100);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kPreconditionFailed);
  fs_->Release(h1->fh);
  auto h2 = fs_->Open(ino, O_RDONLY);  // attributes were marked stale: re-validated
  ASSERT_TRUE(h2);
  EXPECT_FALSE(h2->keep_cache);
  EXPECT_EQ(ReadAll(h2->fh, 0, 100), Expected(9, 0, 100));
}

TEST_F(FsTest, FetchFailuresSurfaceAndTheNextReadRecovers) {
  store_.Put("flaky", 4 * kBlock, 2);
  auto h = fs_->Open(LookupPath("flaky"), O_RDONLY);
  store_.fail_gets = 1000;
  auto r = fs_->Read(h->fh, 2 * kBlock, 100);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kConnection);
  store_.fail_gets = 0;
  EXPECT_EQ(ReadAll(h->fh, 2 * kBlock, 100), Expected(2, 2 * kBlock, 100));
}

TEST_F(FsTest, WriteOpensAreRefused) {
  store_.Put("ro", 1);
  uint64_t ino = LookupPath("ro");
  EXPECT_EQ(fs_->Open(ino, O_WRONLY).error().code, Errc::kReadOnly);
  EXPECT_EQ(fs_->Open(ino, O_RDONLY | O_TRUNC).error().code, Errc::kReadOnly);
  EXPECT_EQ(fs_->Open(meta::kRootIno, O_RDONLY).error().code, Errc::kIsDir);
}

TEST_F(FsTest, ErrorsFromTheStoreKeepTheirMeaning) {
  store_.fail_all = static_cast<int>(Errc::kAccessDenied) + 1;
  auto e = fs_->Lookup(meta::kRootIno, "anything");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Errc::kAccessDenied);
  store_.fail_all = 0;
}

TEST_F(FsTest, ForgetDropsInodes) {
  store_.Put("d/a", 1);
  uint64_t d = LookupPath("d");
  auto a = fs_->Lookup(d, "a");
  size_t before = fs_->inodes().size();
  fs_->Forget(a->attr.ino, 1);
  EXPECT_EQ(fs_->inodes().size(), before - 1);
  EXPECT_FALSE(fs_->inodes().Get(a->attr.ino));
}

// More sequential streams than the cache has blocks, reads across block
// boundaries: no read may wedge (each waits holding nothing) and the cache
// holds each stream's blocks until it is done with them, so bytes fetched
// stay close to bytes read.
TEST_F(FsTest, MoreStreamsThanBlocksNeitherWedgeNorRefetch) {
  const uint64_t size = 12 * kBlock + 5;
  const int streams = 12;
  for (int i = 0; i < streams; ++i) store_.Put("s" + std::to_string(i), size, i);
  Make(8);
  std::vector<uint64_t> inos;
  for (int i = 0; i < streams; ++i) inos.push_back(LookupPath("s" + std::to_string(i)));
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&, i] {
      auto h = fs_->Open(inos[i], O_RDONLY);
      for (uint64_t off = 0; off < size; off += 20000) {
        auto r = fs_->Read(h->fh, off, 20000);
        std::string got;
        if (r)
          for (auto& v : r->iov) got.append(static_cast<char*>(v.iov_base), v.iov_len);
        if (got != Expected(i, off, std::min<uint64_t>(20000, size - off))) ++bad;
      }
      fs_->Release(h->fh);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(store_.bytes.load(), 3 * streams * size / 2) << "fetched at most 1.5x what was read";
}

TEST_F(FsTest, ConcurrentReadersOfOneFile) {
  const uint64_t size = 50 * kBlock + 7;
  store_.Put("shared", size, 4);
  Make(32);
  uint64_t ino = LookupPath("shared");
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto h = fs_->Open(ino, O_RDONLY);
      std::mt19937_64 rng(t);
      for (uint64_t off = (t % 2) ? 0 : size / 2; off < size; off += 20000 + rng() % 5000) {
        auto r = fs_->Read(h->fh, off, 20000);
        if (!r) {
          ++bad;
          continue;
        }
        std::string got;
        for (auto& v : r->iov) got.append(static_cast<char*>(v.iov_base), v.iov_len);
        if (got != Expected(4, off, std::min<uint64_t>(20000, size - off))) ++bad;
      }
      fs_->Release(h->fh);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}
