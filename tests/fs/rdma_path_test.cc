// fs::Filesystem over the RDMA fetcher and uploader with a fake RDMA-S3
// server (tests/lib/fake_rdma.h) that answers on its own thread: every way
// a real server declines or fails, and what the user reads and stores. The
// guest tests (tests/rdma/) run the same paths over real verbs; these run
// everywhere, under the sanitizers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "../lib/fake_rdma.h"
#include "../lib/test_helpers.h"
#include "s3rdmafs/fetch/rdma_range_fetcher.h"
#include "s3rdmafs/fs/filesystem.h"

using namespace s3rdmafs;
using namespace std::chrono_literals;
using Answer = fakes::FakeRdmaStore::Answer;
using fakes::Random;
using fakes::WaitFor;

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPart = 5 * kMiB;
constexpr uint32_t kBlock = 64 * 1024;

class RdmaPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    staging_dir_ = std::filesystem::temp_directory_path() /
                   ("s3rdmafs-rdmatest-" + std::to_string(getpid()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    arena_.assign(64 * kBlock, std::byte{0});
    parts_mem_.assign(3 * kPart, std::byte{0});
    cache_ = std::make_unique<cache::BlockCache>(arena_.data(), arena_.size(), kBlock);
    buffers_ = std::make_unique<mem::SlotPool>(parts_mem_.data(), parts_mem_.size(), kPart);
    std::vector<fetch::RdmaLinks::Link> links;
    for (int i = 0; i < rails_; ++i) {  // all to the one (fake) server
      fetch::RdmaLinks::Link link;
      link.name = "fake";
      link.connect = [this]() -> Result<std::shared_ptr<rdma::TokenSource>> {
        ++connects_;
        return std::shared_ptr<rdma::TokenSource>(rdma_.Connect());
      };
      link.first = rdma_.Connect();
      links.push_back(std::move(link));
    }
    fetch::RdmaLinks::Options lo;
    lo.first_retry = 10ms;
    lo.max_retry = 40ms;
    lo.health_check = 10ms;
    links_ = std::make_shared<fetch::RdmaLinks>(std::move(links), lo);
    http_fetcher_ = fetch::MakeHttpRangeFetcher(&store_);
    http_uploader_ = fetch::MakeHttpPartUploader(&store_);
    fetcher_ = fetch::MakeRdmaRangeFetcher(&rdma_, links_, http_fetcher_.get(), &counters_, 60s);
    uploader_ = fetch::MakeRdmaPartUploader(&rdma_, links_, http_uploader_.get(), &counters_, 60s);
    fs::FsOptions o;
    o.readahead = {2 * kBlock, 8 * kBlock, kBlock, 4};
    o.max_request = 8 * kBlock;
    o.cache_wait = 2000ms;
    o.staging_dir = staging_dir_;
    o.staging_max = 64 * kMiB;
    fs_ = std::make_unique<fs::Filesystem>(o, &store_, fetcher_.get(), cache_.get(),
                                           uploader_.get(), buffers_.get());
    ASSERT_TRUE(fs_->PrepareWrites());
  }
  void TearDown() override {
    links_->Stop();
    rdma_.Drain();
    fs_.reset();
    std::filesystem::remove_all(staging_dir_);
  }

  std::string ReadFile(const std::string& name) {
    auto e = fs_->Lookup(meta::kRootIno, name);
    EXPECT_TRUE(e) << e.error().ToString();
    if (!e) return {};
    auto fh = fs_->Open(e->attr.ino, O_RDONLY);
    EXPECT_TRUE(fh) << fh.error().ToString();
    std::string out;
    for (uint64_t off = 0; off < e->attr.size; off += 128 * 1024) {
      auto r = fs_->Read(fh->fh, off, 128 * 1024);
      EXPECT_TRUE(r) << r.error().ToString();
      if (!r) break;
      for (auto& v : r->iov) out.append(static_cast<char*>(v.iov_base), v.iov_len);
    }
    fs_->Release(fh->fh);
    return out;
  }
  Result<void> WriteFile(const std::string& name, const std::string& data) {
    auto c = fs_->Create(meta::kRootIno, name, 0644, O_WRONLY | O_CREAT, fs::Caller{0, 0, 7});
    if (!c) return tl::unexpected(c.error());
    const uint64_t fh = c->second.fh;
    for (size_t at = 0; at < data.size(); at += 256 * 1024) {
      auto w = fs_->Write(fh, at,
                          {reinterpret_cast<const std::byte*>(data.data()) + at,
                           std::min<size_t>(256 * 1024, data.size() - at)});
      if (!w) return tl::unexpected(w.error());
    }
    auto f = fs_->Flush(fh, fs::Caller{0, 0, 7});
    fs_->Release(fh);
    return f;
  }

  int rails_ = 1;  // connections to the server
  std::filesystem::path staging_dir_;
  fakes::FakeStore store_;
  fakes::FakeRdmaStore rdma_{&store_};
  std::atomic<int> connects_{0};
  std::vector<std::byte> arena_, parts_mem_;
  std::unique_ptr<cache::BlockCache> cache_;
  std::unique_ptr<mem::SlotPool> buffers_;
  std::shared_ptr<fetch::RdmaLinks> links_;
  fetch::TransportCounters counters_;
  std::unique_ptr<fetch::RangeFetcher> http_fetcher_, fetcher_;
  std::unique_ptr<fetch::PartUploader> http_uploader_, uploader_;
  std::unique_ptr<fs::Filesystem> fs_;
};

}  // namespace

TEST_F(RdmaPathTest, ReadsMoveEveryByteByRdmaInWindowsOfSeveralBlocks) {
  store_.Put("f", 1 * kMiB + 123, 5);
  EXPECT_EQ(ReadFile("f"), store_.Bytes("f"));
  EXPECT_EQ(counters_.bytes_rdma.load(), 1 * kMiB + 123);
  EXPECT_EQ(counters_.bytes_http.load(), 0u);
  EXPECT_EQ(store_.gets.load(), 0u) << "no plain GET when RDMA works";
  EXPECT_EQ(rdma_.wrong_access.load(), 0u) << "a GET's window must grant writing";
  // 17 blocks; read-ahead jobs of up to 8 adjacent blocks share one window.
  EXPECT_LT(rdma_.rdma_gets.load(), 17u);
}

// Each real decline (docs/PROTOCOL.md): the user reads the right bytes, and
// nothing is fetched twice.
class RdmaDeclineTest : public RdmaPathTest, public ::testing::WithParamInterface<Answer> {};

TEST_P(RdmaDeclineTest, TheBytesAreRightAndComeOnce) {
  const uint64_t size = 700 * 1024;
  store_.Put("f", size, 9);
  rdma_.answer = GetParam();
  EXPECT_EQ(ReadFile("f"), store_.Bytes("f"));
  EXPECT_EQ(store_.bytes.load() + rdma_.bytes_by_rdma.load() + rdma_.bytes_as_body.load(), size)
      << "a byte fetched twice";
  EXPECT_EQ(counters_.bytes_rdma.load() + counters_.bytes_http.load(), size);
  EXPECT_GT(counters_.fallbacks_declined.load(), 0u);
  EXPECT_EQ(counters_.connections_retired.load(), 0u) << "a decline keeps the connection";
  // The endpoint declined: the next file goes straight over HTTP.
  const uint64_t asked = rdma_.rdma_gets.load();
  store_.Put("g", size, 10);
  EXPECT_EQ(ReadFile("g"), store_.Bytes("g"));
  EXPECT_EQ(rdma_.rdma_gets.load(), asked);
}

INSTANTIATE_TEST_SUITE_P(RealServers, RdmaDeclineTest,
                         ::testing::Values(Answer::kDecline501, Answer::kInvalidRequest,
                                           Answer::kBodyOverHttp),
                         [](const auto& info) {
                           switch (info.param) {
                             case Answer::kDecline501:
                               return std::string("Aistor501");
                             case Answer::kInvalidRequest:
                               return std::string("RustfsInvalidRequest");
                             default:
                               return std::string("CephBodyOverHttp");
                           }
                         });

// Memory windows: a request without a reply has its window invalidated, and
// only that request is redone over HTTP; the connection stays.
TEST_F(RdmaPathTest, ALostReplyFencesItsWindowBeforeTheBlocksAreWrittenAgain) {
  store_.Put("f", 512 * 1024, 3);
  rdma_.answer = Answer::kNoReply;
  std::string first = ReadFile("f");
  rdma_.Drain();  // the late writes have been tried
  EXPECT_EQ(first, store_.Bytes("f"));
  EXPECT_GT(rdma_.late_writes_refused.load(), 0u);
  EXPECT_EQ(rdma_.late_writes_landed.load(), 0u) << "a stale request wrote into reused blocks";
  EXPECT_GT(counters_.windows_fenced.load(), 0u);
  EXPECT_EQ(counters_.connections_retired.load(), 0u) << "quarantine is per window";
  EXPECT_EQ(counters_.bytes_http.load(), 512u * 1024) << "the job was redone over HTTP";
  EXPECT_EQ(ReadFile("f"), store_.Bytes("f"));
  // The same connection carries the next read by RDMA at once.
  rdma_.answer = Answer::kRdma;
  store_.Put("g", 256 * 1024, 4);
  EXPECT_EQ(ReadFile("g"), store_.Bytes("g"));
  EXPECT_EQ(counters_.bytes_rdma.load(), 256u * 1024);
  EXPECT_EQ(connects_.load(), 0);
}

// Without memory windows (a region-wide key: DC, or a device without type 2
// windows) only retiring the connection fences a lost request.
class RdmaRegionKeyTest : public RdmaPathTest {
 protected:
  RdmaRegionKeyTest() { rdma_.windows = false; }
};

TEST_F(RdmaRegionKeyTest, ALostReplyRetiresTheConnectionBeforeTheBlocksAreWrittenAgain) {
  store_.Put("f", 512 * 1024, 3);
  rdma_.answer = Answer::kNoReply;
  std::string first = ReadFile("f");
  rdma_.Drain();
  EXPECT_EQ(first, store_.Bytes("f"));
  EXPECT_GT(rdma_.late_writes_refused.load(), 0u);
  EXPECT_EQ(rdma_.late_writes_landed.load(), 0u) << "a stale request wrote into reused blocks";
  // One per job that lost its reply (a job may go out on the remade
  // connection before the test switches the answer back).
  EXPECT_GE(counters_.connections_retired.load(), 1u);
  EXPECT_EQ(counters_.bytes_http.load(), 512u * 1024) << "the jobs were redone over HTTP";
  EXPECT_EQ(ReadFile("f"), store_.Bytes("f"));
  // The connection is remade in the background and RDMA resumes by itself.
  rdma_.answer = Answer::kRdma;
  ASSERT_TRUE(WaitFor([&] { return links_->connected() == 1 && connects_.load() >= 1; }));
  store_.Put("g", 256 * 1024, 4);
  EXPECT_EQ(ReadFile("g"), store_.Bytes("g"));
  EXPECT_EQ(counters_.bytes_rdma.load(), 256u * 1024);
}

TEST_F(RdmaPathTest, AFailureTheServerAnsweredIsRedoneOverHttpOnTheSameConnection) {
  store_.Put("f", 300 * 1024, 6);
  rdma_.answer = Answer::kServerError;
  EXPECT_EQ(ReadFile("f"), store_.Bytes("f"));
  EXPECT_EQ(counters_.connections_retired.load(), 0u) << "the reply was the fence";
  EXPECT_GT(counters_.fallbacks_failed.load(), 0u);
  rdma_.answer = Answer::kRdma;
  store_.Put("g", 200 * 1024, 7);
  EXPECT_EQ(ReadFile("g"), store_.Bytes("g"));
  EXPECT_EQ(counters_.bytes_rdma.load(), 200u * 1024) << "RDMA right away, no back-off";
}

TEST_F(RdmaPathTest, AServerThatForgotTheConnectionIsReconnectedWithoutBackOff) {
  store_.Put("f", 256 * 1024, 2);
  rdma_.answer = Answer::kConnectionUnknown;
  EXPECT_EQ(ReadFile("f"), store_.Bytes("f"));
  rdma_.answer = Answer::kRdma;
  ASSERT_TRUE(WaitFor([&] { return connects_.load() >= 1 && links_->connected() == 1; }));
  store_.Put("g", 256 * 1024, 8);
  EXPECT_EQ(ReadFile("g"), store_.Bytes("g"));
  EXPECT_EQ(counters_.bytes_rdma.load(), 256u * 1024);
}

// Writes: whatever the server does with an RDMA PUT or UploadPart, what the
// user saved is stored whole, and an RDMA upload always carries its CRC32C.
class RdmaUploadTest : public RdmaPathTest, public ::testing::WithParamInterface<Answer> {};

TEST_P(RdmaUploadTest, WhatWasSavedIsStoredWhole) {
  rdma_.answer = GetParam();
  const std::string small = Random(100 * 1024, 1);      // one PUT
  const std::string big = Random(2 * kPart + 4321, 2);  // three parts
  ASSERT_TRUE(WriteFile("small", small));
  ASSERT_TRUE(WriteFile("big", big));
  rdma_.Drain();
  EXPECT_EQ(store_.Bytes("small"), small);
  EXPECT_EQ(store_.Bytes("big"), big);
  EXPECT_EQ(rdma_.crc_mismatches.load(), 0u);
  EXPECT_EQ(rdma_.wrong_access.load(), 0u) << "a PUT's window must grant reading only";
  EXPECT_EQ(rdma_.late_writes_landed.load(), 0u);
  if (GetParam() == Answer::kRdma) {
    EXPECT_EQ(counters_.bytes_rdma_sent.load(), small.size() + big.size());
    EXPECT_EQ(counters_.bytes_http_sent.load(), 0u);
  } else {
    EXPECT_GT(counters_.bytes_http_sent.load(), 0u);
  }
  if (GetParam() == Answer::kNoReply) {
    EXPECT_GT(counters_.windows_fenced.load(), 0u);
    EXPECT_EQ(counters_.connections_retired.load(), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryAnswer, RdmaUploadTest,
                         ::testing::Values(Answer::kRdma, Answer::kDecline501,
                                           Answer::kInvalidRequest, Answer::kBodyOverHttp,
                                           Answer::kNoReply, Answer::kServerError,
                                           Answer::kConnectionUnknown));

// Rails: several connections (QPs, or addresses of one server) take the
// server's requests in turn; one that goes down leaves the others working.
class RdmaRailsTest : public RdmaPathTest {
 protected:
  RdmaRailsTest() { rails_ = 3; }
};

TEST_F(RdmaRailsTest, RequestsTakeTheRailsInTurnAndSkipOneThatIsDown) {
  for (int i = 0; i < 6; ++i) store_.Put("f" + std::to_string(i), 128 * 1024, i);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(ReadFile("f" + std::to_string(i)), store_.Bytes("f" + std::to_string(i)));
  EXPECT_EQ(rdma_.connections_used(), 3u);
  EXPECT_EQ(counters_.bytes_http.load(), 0u);
  // One rail is lost (its connection retired): the others carry everything.
  links_->Lost(1, links_->Current(1));
  for (int i = 6; i < 10; ++i) store_.Put("f" + std::to_string(i), 128 * 1024, i);
  for (int i = 6; i < 10; ++i)
    EXPECT_EQ(ReadFile("f" + std::to_string(i)), store_.Bytes("f" + std::to_string(i)));
  EXPECT_EQ(counters_.bytes_http.load(), 0u) << "a rail down sends nothing over HTTP";
}
