// The write path of fs::Filesystem without a kernel: the fake store (which
// enforces S3's multipart rules) behind the real DirtyFile, staging area,
// part buffers and HTTP uploader. Runs under ASan/UBSan in the test command.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "../../src/fs/upload_journal.h"
#include "../lib/fake_store.h"
#include "../lib/test_helpers.h"
#include "s3rdmafs/fs/filesystem.h"

using namespace s3rdmafs;
using fakes::FakeStore;
using fakes::RampByte;
using fakes::Random;

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPart = 5 * kMiB;
constexpr uint32_t kBlock = 64 * 1024;

std::span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

class WritePathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    staging_dir_ = std::filesystem::temp_directory_path() /
                   ("s3rdmafs-wtest-" + std::to_string(getpid()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    Make();
  }
  void TearDown() override {
    fs_.reset();
    std::filesystem::remove_all(staging_dir_);
  }
  void Make(uint64_t staging_max = 64 * kMiB, uint64_t max_file = 0, bool streaming = true) {
    fs_.reset();
    arena_.assign(64 * kBlock, std::byte{0});
    parts_mem_.assign(4 * kPart, std::byte{0});
    cache_ = std::make_unique<cache::BlockCache>(arena_.data(), arena_.size(), kBlock);
    buffers_ = std::make_unique<mem::SlotPool>(parts_mem_.data(), parts_mem_.size(), kPart);
    fetcher_ = fetch::MakeHttpRangeFetcher(&store_);
    uploader_ = fetch::MakeHttpPartUploader(&store_);
    fs::FsOptions o;
    o.readahead = {2 * kBlock, 8 * kBlock, kBlock, 4};
    o.max_request = 4 * kBlock;
    o.cache_wait = std::chrono::milliseconds(2000);
    o.staging_dir = staging_dir_;
    o.staging_max = staging_max;
    o.max_file_size = max_file;
    o.streaming = streaming;
    fs_ = std::make_unique<fs::Filesystem>(o, &store_, fetcher_.get(), cache_.get(),
                                           uploader_.get(), buffers_.get());
    ASSERT_TRUE(fs_->PrepareWrites());
  }
  // Creates `name` in the root; returns the file handle.
  uint64_t Create(const std::string& name, uint32_t mode = 0644) {
    auto r = fs_->Create(meta::kRootIno, name, mode, O_WRONLY | O_CREAT, fs::Caller{7, 8, 99});
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? r->second.fh : 0;
  }
  uint64_t OpenPath(const std::string& name, int flags) {
    auto e = fs_->Lookup(meta::kRootIno, name);
    EXPECT_TRUE(e) << e.error().ToString();
    auto r = fs_->Open(e->attr.ino, flags, fs::Caller{0, 0, 99});
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? r->fh : 0;
  }
  uint64_t LookupIno(const std::string& name) {
    auto e = fs_->Lookup(meta::kRootIno, name);
    EXPECT_TRUE(e);
    return e ? e->attr.ino : 0;
  }
  Result<void> WriteAll(uint64_t fh, const std::string& data, uint64_t offset = 0,
                        size_t chunk = 128 * 1024) {
    for (size_t at = 0; at < data.size(); at += chunk) {
      auto r = fs_->Write(fh, offset + at, Bytes(data.substr(at, chunk)));
      if (!r) return tl::unexpected(r.error());
    }
    return {};
  }
  std::string ReadAll(uint64_t fh, uint64_t off, size_t len) {
    auto r = fs_->Read(fh, off, len);
    EXPECT_TRUE(r) << r.error().ToString();
    std::string out;
    if (r)
      for (auto& v : r->iov) out.append(static_cast<char*>(v.iov_base), v.iov_len);
    return out;
  }

  std::filesystem::path staging_dir_;
  FakeStore store_;
  std::vector<std::byte> arena_, parts_mem_;
  std::unique_ptr<cache::BlockCache> cache_;
  std::unique_ptr<mem::SlotPool> buffers_;
  std::unique_ptr<fetch::RangeFetcher> fetcher_;
  std::unique_ptr<fetch::PartUploader> uploader_;
  std::unique_ptr<fs::Filesystem> fs_;
};

}  // namespace

TEST_F(WritePathTest, SequentialWriteStreamsAsMultipartAndAppearsOnFlush) {
  std::string data = Random(2 * kPart + 12345, 1);
  uint64_t fh = Create("big");
  ASSERT_TRUE(WriteAll(fh, data));
  EXPECT_FALSE(store_.Has("big")) << "nothing visible before the flush";
  EXPECT_EQ(store_.open_uploads(), 1u);
  EXPECT_EQ(store_.parts.load(), 1u) << "part 2 went out while writing; part 1 waits";
  ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 99}));
  EXPECT_EQ(store_.Bytes("big"), data);
  EXPECT_EQ(store_.parts.load(), 3u);
  EXPECT_EQ(store_.open_uploads(), 0u);
  auto meta = store_.MetaOf("big");
  EXPECT_EQ(meta["mode"], std::to_string(S_IFREG | 0644));
  EXPECT_EQ(meta["uid"], "7");
  EXPECT_EQ(meta["gid"], "8");
  fs_->Release(fh);
}

TEST_F(WritePathTest, SmallFileIsOnePutAndEmptyFileExists) {
  uint64_t a = Create("small");
  ASSERT_TRUE(WriteAll(a, "hello"));
  fs_->Release(a);
  uint64_t b = Create("empty");
  fs_->Release(b);
  EXPECT_EQ(store_.Bytes("small"), "hello");
  EXPECT_EQ(store_.Bytes("empty"), "");
  EXPECT_EQ(store_.puts.load(), 2u);
  EXPECT_EQ(store_.parts.load(), 0u);
}

TEST_F(WritePathTest, FlushFromAnotherProcessDoesNotPublish) {
  uint64_t fh = Create("ckpt");
  ASSERT_TRUE(WriteAll(fh, "partial"));
  ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 1234}));  // a forked child closing its copy
  EXPECT_FALSE(store_.Has("ckpt"));
  ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 99}));
  EXPECT_EQ(store_.Bytes("ckpt"), "partial");
  fs_->Release(fh);
}

TEST_F(WritePathTest, SeekBackIntoTheFirstPartPatchesIt) {
  std::string data = Random(2 * kPart + 10, 2);
  uint64_t fh = Create("zip");
  ASSERT_TRUE(WriteAll(fh, data));
  ASSERT_TRUE(fs_->Write(fh, 3, Bytes("HDR")));
  fs_->Release(fh);
  data.replace(3, 3, "HDR");
  EXPECT_EQ(store_.Bytes("zip"), data);
}

TEST_F(WritePathTest, WriteIntoASentPartSendsItAgainAtCommit) {
  std::string data = Random(3 * kPart, 3);
  uint64_t fh = Create("stream");
  ASSERT_TRUE(WriteAll(fh, data));
  EXPECT_EQ(store_.parts.load(), 2u) << "parts 2 and 3 went out while writing";
  ASSERT_TRUE(fs_->Write(fh, kPart + 1, Bytes("x")));  // HDF5 writes its index like this
  EXPECT_EQ(ReadAll(fh, kPart, 3), data.substr(kPart, 1) + "x" + data.substr(kPart + 2, 1));
  EXPECT_FALSE(store_.Has("stream"));
  fs_->Release(fh);
  data[kPart + 1] = 'x';
  EXPECT_EQ(store_.Bytes("stream"), data);
  EXPECT_EQ(store_.parts.load(), 4u) << "part 1, and part 2 again; part 3 kept";
}

TEST_F(WritePathTest, StagingBoundDropsUploadedPartsAndTheFileIsStillSaved) {
  Make(3 * kPart);  // a stream of 6 parts through a staging area of 3
  std::string data = Random(6 * kPart + 10, 9);
  uint64_t fh = Create("huge");
  ASSERT_TRUE(WriteAll(fh, data));
  auto back = fs_->Write(fh, 2 * kPart, Bytes("y"));  // part 3 was dropped
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Errc::kDiskFull);
  EXPECT_NE(back.error().message.find("write.staging_max"), std::string::npos);
  ASSERT_TRUE(fs_->Write(fh, 5, Bytes("HDR")));  // part 1 stays for header patches
  ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 99}));
  fs_->Release(fh);
  data.replace(5, 3, "HDR");
  EXPECT_EQ(store_.Bytes("huge"), data);
  EXPECT_EQ(fs_->staging_bytes(), 0u);
}

TEST_F(WritePathTest, RandomWriterBeforeAnyPartIsSentIsStaged) {
  uint64_t fh = Create("rand");
  ASSERT_TRUE(fs_->Write(fh, 3 * kMiB, Bytes("end")));
  ASSERT_TRUE(fs_->Write(fh, 10, Bytes("mid")));
  EXPECT_EQ(ReadAll(fh, 8, 7), std::string("\0\0mid\0\0", 7));
  fs_->Release(fh);
  std::string want(3 * kMiB + 3, '\0');
  want.replace(10, 3, "mid");
  want.replace(3 * kMiB, 3, "end");
  EXPECT_EQ(store_.Bytes("rand"), want);
}

TEST_F(WritePathTest, EditInPlaceCarriesUnchangedPartsOver) {
  store_.Put("obj", 4 * kPart + 100, 5);
  std::string want = store_.Bytes("obj");
  uint64_t fh = OpenPath("obj", O_RDWR);
  ASSERT_TRUE(fs_->Write(fh, 2 * kPart + 7, Bytes("patched")));
  EXPECT_EQ(ReadAll(fh, 2 * kPart + 5, 11),
            want.substr(2 * kPart + 5, 2) + "patched" + want.substr(2 * kPart + 14, 2));
  ASSERT_TRUE(fs_->Fsync(fh));
  want.replace(2 * kPart + 7, 7, "patched");
  EXPECT_EQ(store_.Bytes("obj"), want);
  EXPECT_EQ(store_.copied_parts.load(), 4u) << "parts 1, 2, 4 and 5 copied on the server";
  EXPECT_EQ(store_.parts.load(), 1u) << "only part 3 was sent";
  // Writing on after a commit edits the new version.
  ASSERT_TRUE(fs_->Write(fh, 0, Bytes("X")));
  fs_->Release(fh);
  want[0] = 'X';
  EXPECT_EQ(store_.Bytes("obj"), want);
}

TEST_F(WritePathTest, AppendAndTruncate) {
  store_.Put("f", 1000, 9);
  std::string want = store_.Bytes("f");
  uint64_t fh = OpenPath("f", O_WRONLY | O_APPEND);
  ASSERT_TRUE(fs_->Write(fh, 1000, Bytes("tail")));
  fs_->Release(fh);
  EXPECT_EQ(store_.Bytes("f"), want + "tail");
  auto e = fs_->Lookup(meta::kRootIno, "f");
  fs::SetAttrRequest shrink;
  shrink.size = 10;
  ASSERT_TRUE(fs_->SetAttr(e->attr.ino, shrink));
  EXPECT_EQ(store_.Bytes("f"), want.substr(0, 10));
  fs::SetAttrRequest grow;
  grow.size = 20;
  auto a = fs_->SetAttr(e->attr.ino, grow);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 20u);
  EXPECT_EQ(store_.Bytes("f"), want.substr(0, 10) + std::string(10, '\0'));
}

// The kernel sends RELEASE after close(2) returns. A program that appends,
// closes, and at once reopens with O_TRUNC may have its new handle sharing the
// write state before the old handle's RELEASE arrives: that late RELEASE must
// not publish the new handle's truncated, half-written file (fuse.write saw an
// empty object in CI). The new handle's close publishes it.
TEST_F(WritePathTest, ALateReleaseDoesNotPublishAnotherHandlesUnfinishedWrite) {
  store_.Put("a", 6, 1);
  const std::string old = store_.Bytes("a");
  uint64_t append = OpenPath("a", O_WRONLY | O_APPEND);
  ASSERT_TRUE(fs_->Write(append, 6, Bytes("world")));
  ASSERT_TRUE(fs_->Flush(append, fs::Caller{0, 0, 99}));  // close(2)
  EXPECT_EQ(store_.Bytes("a"), old + "world");
  uint64_t trunc = OpenPath("a", O_WRONLY | O_TRUNC);  // before the RELEASE
  ASSERT_TRUE(fs_->Write(trunc, 0, Bytes("new")));
  fs_->Release(append);  // the late RELEASE
  EXPECT_EQ(store_.Bytes("a"), old + "world") << "the old object stays until the close";
  ASSERT_TRUE(fs_->Flush(trunc, fs::Caller{0, 0, 99}));
  fs_->Release(trunc);
  EXPECT_EQ(store_.Bytes("a"), "new");
}

TEST_F(WritePathTest, RefusedPartsPublishNothingAndALaterFlushSavesTheFile) {
  store_.Put("doomed", 100, 3);
  std::string old = store_.Bytes("doomed");
  store_.fail_parts = 100;
  std::string data = Random(3 * kPart, 4);
  uint64_t fh = OpenPath("doomed", O_WRONLY | O_TRUNC);
  ASSERT_TRUE(WriteAll(fh, data)) << "a part refused while writing is sent again at commit";
  auto f = fs_->Flush(fh, fs::Caller{0, 0, 99});
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, Errc::kServerError);
  EXPECT_EQ(store_.Bytes("doomed"), old) << "a failed commit changes nothing";
  store_.fail_parts = 0;
  ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 99})) << "every byte is still staged";
  fs_->Release(fh);
  EXPECT_EQ(store_.Bytes("doomed"), data);
  EXPECT_EQ(store_.open_uploads(), 0u);
}

TEST_F(WritePathTest, UnsavedFileAbortsItsUploadAtTheLastClose) {
  store_.fail_parts = 1000;
  uint64_t fh = Create("never");
  ASSERT_TRUE(WriteAll(fh, Random(3 * kPart, 4)));
  fs_->Release(fh);
  EXPECT_FALSE(store_.Has("never"));
  EXPECT_EQ(store_.open_uploads(), 0u) << "the upload was aborted";
  EXPECT_FALSE(fs_->Lookup(meta::kRootIno, "never")) << "no name without an object";
}

TEST_F(WritePathTest, FullStagingAreaIsDiskFullAndLosesNothing) {
  Make(1 * kMiB);
  store_.Put("keep", 3 * kMiB, 6);
  std::string before = store_.Bytes("keep");
  uint64_t fh = OpenPath("keep", O_WRONLY);
  auto r = WriteAll(fh, std::string(2 * kMiB, 'x'));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDiskFull);
  EXPECT_FALSE(fs_->Flush(fh, fs::Caller{0, 0, 99}));  // needs the rest staged: full again
  fs_->Release(fh);
  EXPECT_EQ(store_.Bytes("keep"), before);
}

TEST_F(WritePathTest, SizeLimitIsTooBig) {
  Make(64 * kMiB, 1 * kMiB);
  uint64_t fh = Create("huge");
  auto r = fs_->Write(fh, kMiB - 1, Bytes("xy"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kTooBig);
  fs_->Release(fh);
}

TEST_F(WritePathTest, UnlinkOfAnOpenFileDefersTheDelete) {
  store_.Put("gone", 3 * kBlock, 2);
  uint64_t fh = OpenPath("gone", O_RDONLY);
  ASSERT_TRUE(fs_->Unlink(meta::kRootIno, "gone"));
  EXPECT_FALSE(fs_->Lookup(meta::kRootIno, "gone"));
  EXPECT_TRUE(store_.Has("gone"));
  std::string want = store_.Bytes("gone");
  EXPECT_EQ(ReadAll(fh, 0, want.size()), want);
  fs_->Release(fh);
  EXPECT_FALSE(store_.Has("gone"));
}

TEST_F(WritePathTest, UnlinkOfAFileBeingWrittenPublishesNothing) {
  uint64_t fh = Create("tmp");
  ASSERT_TRUE(WriteAll(fh, Random(2 * kPart + 1, 8)));
  ASSERT_TRUE(fs_->Unlink(meta::kRootIno, "tmp"));
  fs_->Release(fh);
  EXPECT_FALSE(store_.Has("tmp"));
  EXPECT_EQ(store_.open_uploads(), 0u);
}

TEST_F(WritePathTest, RenameSavesFirstAndKeepsAttributes) {
  uint64_t fh = Create("a", 0600);
  ASSERT_TRUE(WriteAll(fh, "content"));
  ASSERT_TRUE(fs_->Rename(meta::kRootIno, "a", meta::kRootIno, "b", 0));
  EXPECT_TRUE(store_.Has("a")) << "kept for open handles until the last close";
  EXPECT_EQ(store_.Bytes("b"), "content");
  ASSERT_TRUE(fs_->Write(fh, 7, Bytes("+more")));  // the open file follows its new name
  fs_->Release(fh);
  EXPECT_EQ(store_.Bytes("b"), "content+more");
  EXPECT_FALSE(store_.Has("a"));
  EXPECT_EQ(store_.MetaOf("b")["mode"], std::to_string(S_IFREG | 0600));
  auto noreplace = fs_->Rename(meta::kRootIno, "b", meta::kRootIno, "b2", RENAME_NOREPLACE);
  EXPECT_TRUE(noreplace);
  uint64_t c = Create("c");
  fs_->Release(c);
  auto clash = fs_->Rename(meta::kRootIno, "b2", meta::kRootIno, "c", RENAME_NOREPLACE);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, Errc::kExists);
}

TEST_F(WritePathTest, DirectoriesMarkersAndEmptiness) {
  auto d = fs_->Mkdir(meta::kRootIno, "d", 0750, fs::Caller{1, 2, 3});
  ASSERT_TRUE(d);
  EXPECT_TRUE(store_.Has("d/"));
  EXPECT_EQ(store_.MetaOf("d/")["mode"], std::to_string(S_IFDIR | 0750));
  auto f = fs_->Create(d->attr.ino, "f", 0644, O_WRONLY | O_CREAT, fs::Caller{});
  ASSERT_TRUE(f);
  auto busy = fs_->Rmdir(meta::kRootIno, "d");
  ASSERT_FALSE(busy) << "a file not yet uploaded counts";
  EXPECT_EQ(busy.error().code, Errc::kNotEmpty);
  fs_->Release(f->second.fh);
  ASSERT_TRUE(fs_->Rename(meta::kRootIno, "d", meta::kRootIno, "e", 0));
  EXPECT_TRUE(store_.Has("e/f"));
  EXPECT_TRUE(store_.Has("e/"));
  EXPECT_FALSE(store_.Has("d/"));
  ASSERT_TRUE(fs_->Unlink(LookupIno("e"), "f"));
  ASSERT_TRUE(fs_->Rmdir(meta::kRootIno, "e"));
  EXPECT_FALSE(store_.Has("e/"));
}

TEST_F(WritePathTest, SymlinkRoundTrip) {
  auto l = fs_->Symlink("../target", meta::kRootIno, "link", fs::Caller{});
  ASSERT_TRUE(l);
  EXPECT_EQ(l->attr.mode & S_IFMT, static_cast<uint32_t>(S_IFLNK));
  auto t = fs_->Readlink(l->attr.ino);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, "../target");
}

TEST_F(WritePathTest, ParallelWritersOfDifferentFiles) {
  std::vector<std::thread> threads;
  std::vector<std::string> blobs;
  for (int i = 0; i < 4; ++i) blobs.push_back(Random(kPart + 1000 * i, 20 + i));
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      uint64_t fh = Create("p" + std::to_string(i));
      if (!WriteAll(fh, blobs[i], 0, 64 * 1024) || !fs_->Flush(fh, fs::Caller{0, 0, 99}))
        ++failures;
      fs_->Release(fh);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(store_.Bytes("p" + std::to_string(i)), blobs[i]);
}

TEST_F(WritePathTest, WritersHoldingEveryBufferStillFinish) {
  // 4 buffers. A and B have sent part 2 (their uploads exist) and hold part 1;
  // C and D hold part 1. Every buffer is someone's part 1 when A needs one
  // for part 3: holding part 1 while waiting would stall A (and then all).
  std::vector<std::string> blobs;
  for (int i = 0; i < 4; ++i) blobs.push_back(Random(3 * kPart, 40 + i));
  std::vector<uint64_t> fhs;
  for (int i = 0; i < 4; ++i) fhs.push_back(Create("s" + std::to_string(i)));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(WriteAll(fhs[i], blobs[i].substr(0, i < 2 ? 2 * kPart : kPart)));
  EXPECT_EQ(buffers_->free_count(), 4u) << "nobody holds a buffer between uploads";
  for (int i = 0; i < 4; ++i) {
    uint64_t done = i < 2 ? 2 * kPart : kPart;
    auto r = WriteAll(fhs[i], blobs[i].substr(done), done);
    EXPECT_TRUE(r) << i << ": " << (r ? "" : r.error().ToString());
    EXPECT_TRUE(fs_->Flush(fhs[i], fs::Caller{0, 0, 99}));
    fs_->Release(fhs[i]);
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(store_.Bytes("s" + std::to_string(i)), blobs[i]);
}

TEST(UploadJournalTest, OpenUploadsAreThoseBegunAndNotEnded) {
  auto open = fs::OpenUploadsIn("B id1 a/b\nB id2 key%0Awith newline %25\nE id1\nB id3 c\ntorn li");
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].upload_id, "id2");
  EXPECT_EQ(open[0].key, "key\nwith newline %");
  EXPECT_EQ(open[1].key, "c");
}

TEST(UploadJournalTest, ADeadMountsJournalIsHandedOverOnce) {
  auto dir =
      std::filesystem::temp_directory_path() / ("s3rdmafs-journal-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::vector<fs::OpenUpload> left;
  {
    auto j = fs::UploadJournal::Open(dir, "scope", &left);
    ASSERT_TRUE(j);
    (*j)->Begin("k1", "u1");
    (*j)->Begin("k2", "u2");
    (*j)->End("u1");
    std::vector<fs::OpenUpload> none;
    auto live = fs::UploadJournal::Open(dir, "scope", &none);  // a second live mount
    ASSERT_TRUE(live);
    EXPECT_TRUE(none.empty()) << "a locked journal belongs to a live mount";
    auto other = fs::UploadJournal::Open(dir, "other scope", &none);
    EXPECT_TRUE(none.empty());
    // `j` dies holding u2, as a killed daemon would leave it.
  }
  auto next = fs::UploadJournal::Open(dir, "scope", &left);
  ASSERT_TRUE(next);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].key, "k2");
  EXPECT_EQ(left[0].upload_id, "u2");
  left.clear();
  auto again = fs::UploadJournal::Open(dir, "scope", &left);
  EXPECT_TRUE(left.empty()) << "handed over once";
  std::filesystem::remove_all(dir);
}

// A listing of files this mount wrote costs the LIST and one GET of the
// directory's record: modes, owners and symlink targets come with it, and a
// file another tool wrote or rewrote shows the listing's attributes only.
TEST_F(WritePathTest, ListingTakesAttributesFromTheDirectoryRecord) {
  for (auto [name, mode] : {std::pair{"a", 0600u}, {"b", 0755u}, {"c", 0640u}}) {
    uint64_t fh = Create(name, mode);
    ASSERT_TRUE(WriteAll(fh, std::string(10, 'x')));
    ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 99}));
    fs_->Release(fh);
  }
  ASSERT_TRUE(fs_->Symlink("a", meta::kRootIno, "link", fs::Caller{7, 8, 99}));
  fs::SetAttrRequest chmod;
  chmod.mode = 0604;
  ASSERT_TRUE(fs_->SetAttr(LookupIno("c"), chmod));
  ASSERT_TRUE(fs_->Unlink(meta::kRootIno, "b"));
  fs_->FlushMetadata(std::chrono::seconds(5));
  ASSERT_TRUE(store_.Has(".s3rdmafs-preserved/records/@"));
  store_.Put("foreign", 3);

  auto list = [this] {
    Make();  // a fresh mount: it knows only what the store holds
    std::map<std::string, fs::Attributes> seen;
    auto dh = fs_->OpenDir(meta::kRootIno);
    EXPECT_TRUE(fs_->ReadDir(*dh, 0, true, [&](const fs::DirEntry& e) {
      EXPECT_FALSE(e.attr_provisional) << e.name;
      seen[std::string(e.name)] = e.attr;
      return true;
    }));
    fs_->ReleaseDir(*dh);
    return seen;
  };
  const uint64_t heads = store_.heads, gets = store_.gets, firsts = store_.head_with_bodies;
  auto seen = list();
  EXPECT_EQ(store_.heads - heads, 1u) << "no HEAD per file; one for the file nobody vouches for, "
                                         "to learn whether this directory carries x-amz-meta-*";
  EXPECT_EQ(store_.gets - gets + store_.head_with_bodies - firsts, 1u) << "the record, once";
  EXPECT_EQ(seen["a"].mode, S_IFREG | 0600);
  EXPECT_EQ(seen["a"].uid, 7u);
  EXPECT_EQ(seen["a"].gid, 8u);
  EXPECT_EQ(seen["c"].mode, S_IFREG | 0604) << "the chmod's copy is in the record too";
  EXPECT_FALSE(seen.count("b"));
  EXPECT_EQ(seen["link"].mode, S_IFLNK | 0777);
  EXPECT_EQ(seen["foreign"].mode, S_IFREG | 0444) << "the mount's default: nobody vouches";
  const uint64_t before_readlink = store_.gets;
  auto target = fs_->Readlink(seen["link"].ino);
  ASSERT_TRUE(target);
  EXPECT_EQ(*target, "a");
  EXPECT_EQ(store_.gets, before_readlink) << "the target came with the record";

  store_.Put("a", 10);  // rewritten by another tool: a new ETag
  seen = list();
  EXPECT_EQ(seen["a"].mode, S_IFREG | 0444) << "the record names the old version";
  EXPECT_EQ(seen["c"].mode, S_IFREG | 0604);
}

// Two mounts writing one directory merge their changes into its record
// (a conditional write; the loser of a race reads the winner's and retries).
TEST_F(WritePathTest, MountsSharingADirectoryMergeItsRecord) {
  uint64_t fh = Create("one", 0600);
  ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 99}));
  fs_->Release(fh);
  fs_->FlushMetadata(std::chrono::seconds(5));
  Make();  // the other mount: it has never listed "one"
  fh = Create("two", 0640);
  ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 99}));
  fs_->Release(fh);
  fs_->FlushMetadata(std::chrono::seconds(5));
  Make();
  std::map<std::string, uint32_t> modes;
  auto dh = fs_->OpenDir(meta::kRootIno);
  ASSERT_TRUE(fs_->ReadDir(*dh, 0, true, [&](const fs::DirEntry& e) {
    modes[std::string(e.name)] = e.attr.mode;
    return true;
  }));
  fs_->ReleaseDir(*dh);
  EXPECT_EQ(modes["one"], S_IFREG | 0600u);
  EXPECT_EQ(modes["two"], S_IFREG | 0640u);
}

// The kernel sends RELEASE after close(2) returns, so a truncate(2) by path
// can run while the last release drops the write state. The truncation must
// still reach the server (it was lost: fuse.model seed 777, "wrong bytes").
TEST_F(WritePathTest, TruncateDuringTheLastReleaseIsSaved) {
  for (int round = 0; round < 400; ++round) {
    const std::string name = "f" + std::to_string(round);
    store_.Put(name, 64, static_cast<uint32_t>(round));
    const uint64_t ino = LookupIno(name);
    uint64_t fh = OpenPath(name, O_WRONLY);
    ASSERT_TRUE(fs_->Write(fh, 0, Bytes("abcdefgh")));
    ASSERT_TRUE(fs_->Flush(fh, fs::Caller{0, 0, 99}));
    std::atomic<int> ready{0};
    std::thread closer([&] {
      ++ready;
      while (ready.load() < 2) {
      }
      fs_->Release(fh);
    });
    ++ready;
    while (ready.load() < 2) {
    }
    fs::SetAttrRequest shrink;
    shrink.size = 3;
    auto a = fs_->SetAttr(ino, shrink);
    closer.join();
    ASSERT_TRUE(a) << a.error().ToString();
    ASSERT_EQ(store_.Bytes(name), "abc") << "round " << round;
    auto attr = fs_->GetAttr(ino);
    ASSERT_TRUE(attr);
    ASSERT_EQ(attr->size, 3u) << "round " << round;
  }
}
