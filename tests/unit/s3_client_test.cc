// S3Client + CurlEngine against a scripted HTTP peer on loopback: retry
// policy (5xx, SlowDown and connection errors retried with back-off; 4xx
// never), request shape (SigV4, Range, If-Match), and zero-copy sinks.
#include "s3rdmafs/s3/s3_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "../lib/test_helpers.h"
#include "s3rdmafs/common/deadline_timer.h"

using namespace s3rdmafs;
using fakes::ListenOnLoopback;

namespace {

// A request's line and headers, up to the blank line.
std::string ReadRequestHead(int c) {
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = read(c, buf, sizeof buf);
    if (n <= 0) break;
    req.append(buf, n);
  }
  return req;
}

// Answers each request with the next canned response (one per connection).
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::deque<std::string> responses) : responses_(std::move(responses)) {
    fd_ = ListenOnLoopback(&port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedPeer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  int requests() const { return requests_.load(); }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void Serve() {
    for (;;) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req = ReadRequestHead(c);
      std::string resp;
      {
        std::lock_guard lock(mu_);
        last_ = req;
        if (!responses_.empty()) {
          resp = responses_.front();
          responses_.pop_front();
        }
      }
      ++requests_;
      if (resp != "CLOSE") {
        ssize_t ignored = write(c, resp.data(), resp.size());
        (void)ignored;
      }
      close(c);
    }
  }
  int fd_;
  int port_;
  std::thread thread_;
  std::mutex mu_;
  std::deque<std::string> responses_;
  std::string last_;
  std::atomic<int> requests_{0};
};

std::string Reply(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
         extra + "\r\n" + body;
}
std::string ErrorReply(int status, const std::string& code) {
  return Reply(status, "<Error><Code>" + code + "</Code><Message>m</Message></Error>");
}

struct Client {
  s3::CurlEngine engine{s3::CurlEngine::Options{}};
  std::unique_ptr<s3::S3Client> client;
  explicit Client(int port) {
    s3::S3ClientOptions o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(port);
    o.bucket = "bkt";
    o.credentials = {"AKID", "SECRET", ""};
    o.max_retries = 3;
    o.retry_base_delay_ms = 5;
    o.retry_max_delay_ms = 20;
    client = std::move(*s3::S3Client::Create(o, &engine));
  }
};

}  // namespace

TEST(S3Client, RetriesSlowDownAndServerErrorsThenSucceeds) {
  ScriptedPeer peer({ErrorReply(503, "SlowDown"), ErrorReply(500, "InternalError"),
                     Reply(200, "", "Content-Length: 42\r\nETag: \"e\"\r\n")});
  Client c(peer.port());
  auto r = c.client->Head("k");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(peer.requests(), 3);
  EXPECT_EQ(c.client->retries(), 2u);
}

TEST(S3Client, NeverRetriesClientErrors) {
  for (auto [status, code, errc] :
       {std::tuple{404, "NoSuchKey", Errc::kNoSuchKey},
        std::tuple{403, "AccessDenied", Errc::kAccessDenied},
        std::tuple{400, "InvalidArgument", Errc::kBadRequest},
        std::tuple{412, "PreconditionFailed", Errc::kPreconditionFailed}}) {
    ScriptedPeer peer({ErrorReply(status, code), Reply(200, "")});
    Client c(peer.port());
    s3::GetRequest g;
    g.key = "k";
    g.length = 4;
    std::vector<std::byte> buf(4);
    g.into = {buf};
    auto r = c.client->Get(g);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc) << code;
    EXPECT_EQ(peer.requests(), 1) << code;
  }
}

TEST(S3Client, ConnectionErrorsAreRetriedThenReported) {
  ScriptedPeer peer({"CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE"});
  Client c(peer.port());
  auto r = c.client->Head("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kConnection);
  EXPECT_EQ(peer.requests(), 4) << "one try and max_retries retries";
}

namespace {
std::byte window[4];
Result<s3::RdmaReply> RdmaGet(Client& c) {
  std::promise<Result<s3::RdmaReply>> p;
  auto f = p.get_future();
  std::fill(std::begin(window), std::end(window), std::byte{0});
  c.client->GetRdmaAsync("k", 0, window, "", "TOKEN", [&p](auto r) { p.set_value(std::move(r)); });
  return f.get();
}
}  // namespace

// How real servers decline (docs/PROTOCOL.md): Ceph RGW serves the body over
// HTTP with no x-amz-rdma-reply, and that body is kept, not fetched again;
// RustFS refuses any token with 400 InvalidRequest, a decline.
TEST(S3Client, ABodyFromAServerThatIgnoredTheTokenLandsInTheWindow) {
  ScriptedPeer peer({Reply(206, "abcd", "Content-Range: bytes 0-3/10\r\nETag: \"e\"\r\n")});
  Client c(peer.port());
  auto r = RdmaGet(c);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->declined);
  EXPECT_TRUE(r->served_over_http);
  EXPECT_EQ(r->bytes, 4u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(window), 4), "abcd");
  EXPECT_EQ(peer.requests(), 1);
}

TEST(S3Client, ATokenRefusedAsAnInvalidRequestIsADecline) {
  ScriptedPeer peer({ErrorReply(400, "InvalidRequest"), ErrorReply(400, "InvalidRequest")});
  Client c(peer.port());
  auto r = RdmaGet(c);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->declined);
  EXPECT_FALSE(r->served_over_http);
  EXPECT_EQ(peer.requests(), 1);
}

// A PUT answered 200 + ETag with neither reply header: a server that does
// RDMA but says nothing more (accepted), or one that ignored the token and
// stored the empty body, whose ETag is the MD5 of nothing (declined: the
// bytes go again over HTTP).
TEST(S3Client, AnRdmaPutAnsweredWithAnEtagAloneIsAcceptedUnlessItStoredNothing) {
  ScriptedPeer peer({Reply(200, "", "ETag: \"0123456789abcdef0123456789abcdef\"\r\n"),
                     Reply(200, "", "ETag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\n")});
  Client c(peer.port());
  auto ok = c.client->PutRdma("k", "TOKEN", "AAAAAA==");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_FALSE(ok->declined);
  EXPECT_EQ(s3::BareEtag(ok->etag), "0123456789abcdef0123456789abcdef");
  auto empty = c.client->PutRdma("k", "TOKEN", "AAAAAA==");
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_TRUE(empty->declined) << "an empty object stored in place of the data";
  EXPECT_EQ(peer.requests(), 2);
}

// A retry would reuse the token while the first attempt may still be queued
// on the server: a late WRITE could then land in blocks already reused.
TEST(S3Client, RdmaRequestsWithoutAnAnswerAreNeverSentAgain) {
  ScriptedPeer peer({"CLOSE", "CLOSE", "CLOSE", "CLOSE"});
  Client c(peer.port());
  auto r = RdmaGet(c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kConnection);
  EXPECT_EQ(r.error().http_status, 0);
  EXPECT_EQ(peer.requests(), 1);
  EXPECT_EQ(c.client->retries(), 0u);
}

// An answer means the server is done with the token: a 503 is retried.
TEST(S3Client, RdmaRequestsAnsweredWithABusyServerAreRetried) {
  ScriptedPeer peer(
      {ErrorReply(503, "SlowDown"),
       Reply(206, "",
             "x-amz-rdma-reply: 1\r\nx-amz-rdma-bytes-transferred: 4\r\nETag: \"e\"\r\n")});
  Client c(peer.port());
  auto r = RdmaGet(c);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_FALSE(r->declined);
  EXPECT_EQ(r->bytes, 4u);
  EXPECT_EQ(peer.requests(), 2);
}

// 501 is a decline, never retried; RDMAConnectionUnknown says the server
// lost the connection (restarted), which the caller answers by reconnecting.
TEST(S3Client, RdmaDeclinesAreNotRetriedAndNameAnUnknownConnection) {
  for (auto [code, unknown] :
       {std::pair{"NotImplemented", false}, std::pair{"RDMAConnectionUnknown", true}}) {
    ScriptedPeer peer({ErrorReply(501, code), ErrorReply(501, code)});
    Client c(peer.port());
    auto r = RdmaGet(c);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_TRUE(r->declined) << code;
    EXPECT_EQ(r->connection_unknown, unknown) << code;
    EXPECT_EQ(peer.requests(), 1) << code;
  }
}

namespace {
// Answers HEAD at once and holds every GET until released: a data pipe that
// is full and stuck.
class StuckDataPeer {
 public:
  StuckDataPeer() {
    fd_ = ListenOnLoopback(&port_);
    acceptor_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::lock_guard lock(mu_);
        handlers_.emplace_back([this, c] { Serve(c); });
      }
    });
  }
  ~StuckDataPeer() {
    Release();
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    std::vector<std::thread> handlers;
    {
      std::lock_guard lock(mu_);
      handlers.swap(handlers_);
    }
    for (auto& t : handlers) t.join();
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int port() const { return port_; }
  int stuck() const { return stuck_.load(); }

 private:
  void Serve(int c) {
    const std::string req = ReadRequestHead(c);
    if (req.rfind("GET", 0) == 0) {
      ++stuck_;
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return released_; });
    }
    std::string resp = Reply(206, "abcd", "Content-Range: bytes 0-3/4\r\nETag: \"e\"\r\n");
    if (req.rfind("HEAD", 0) == 0)  // no body follows a HEAD's Content-Length
      resp = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nETag: \"e\"\r\nConnection: close\r\n\r\n";
    ssize_t ignored = write(c, resp.data(), resp.size());
    (void)ignored;
    close(c);
  }
  int fd_;
  int port_;
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<std::thread> handlers_;
  std::atomic<int> stuck_{0};
};
}  // namespace

// stat, lookup and readdir wait on HEAD and LIST: those have their own
// budget, so a pipe full of stuck data requests does not hold them up.
TEST(S3Client, MetadataDoesNotQueueBehindAFullDataLane) {
  StuckDataPeer peer;
  s3::CurlEngine::Options eo;
  eo.max_in_flight = 2;
  eo.max_metadata_in_flight = 2;
  s3::CurlEngine engine(eo);
  s3::S3ClientOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(peer.port());
  o.bucket = "bkt";
  o.credentials = {"AKID", "SECRET", ""};
  auto client = std::move(*s3::S3Client::Create(o, &engine));
  std::vector<std::vector<std::byte>> bufs(3, std::vector<std::byte>(4));
  std::vector<std::future<Result<uint64_t>>> gets;
  for (auto& b : bufs) {
    auto p = std::make_shared<std::promise<Result<uint64_t>>>();
    gets.push_back(p->get_future());
    s3::GetRequest g;
    g.key = "data";
    g.length = 4;
    g.into = {b};
    client->GetAsync(g, [p](Result<s3::GetResult> r) {
      p->set_value(r ? Result<uint64_t>(r->bytes) : tl::unexpected(r.error()));
    });
  }
  for (int i = 0; i < 500 && peer.stuck() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(peer.stuck(), 2) << "both data slots are taken, the third GET waits";
  auto head = std::async(std::launch::async, [&] { return client->Head("meta"); });
  struct ReleaseOnExit {  // a failed assertion must not leave `head` waiting forever
    StuckDataPeer& peer;
    ~ReleaseOnExit() { peer.Release(); }
  } release_on_exit{peer};
  ASSERT_EQ(head.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the HEAD queued behind the data requests";
  auto h = head.get();
  EXPECT_TRUE(h) << h.error().ToString();
  peer.Release();
  for (auto& g : gets) EXPECT_TRUE(g.get());
}

TEST(S3Client, RangedGetIsSignedAndLandsInTheSpans) {
  ScriptedPeer peer(
      {Reply(206, "0123456789", "Content-Range: bytes 10-19/100\r\nETag: \"v1\"\r\n")});
  Client c(peer.port());
  std::vector<std::byte> a(4), b(6);
  s3::GetRequest g;
  g.key = "dir/a b+c";
  g.offset = 10;
  g.length = 10;
  g.if_match = "\"v1\"";
  g.into = {a, b};
  auto r = c.client->Get(g);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(std::string(reinterpret_cast<char*>(a.data()), 4), "0123");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b.data()), 6), "456789");
  std::string req = peer.last_request();
  EXPECT_NE(req.find("GET /bkt/dir/a%20b%2Bc HTTP/1.1"), std::string::npos) << req;
  EXPECT_NE(req.find("Range: bytes=10-19"), std::string::npos) << req;
  EXPECT_NE(req.find("If-Match: \"v1\""), std::string::npos) << req;
  EXPECT_NE(req.find("Authorization: AWS4-HMAC-SHA256 Credential=AKID/"), std::string::npos) << req;
  EXPECT_NE(req.find("SignedHeaders=host;if-match;range;x-amz-content-sha256;x-amz-date"),
            std::string::npos)
      << req;
}

TEST(S3Client, ShortOrOverlongBodiesAreErrors) {
  {
    ScriptedPeer peer({Reply(206, "0123456789012"), Reply(206, "0123456789012"),
                       Reply(206, "0123456789012"), Reply(206, "0123456789012")});
    Client c(peer.port());
    std::vector<std::byte> buf(10);
    s3::GetRequest g;
    g.key = "k";
    g.length = 10;
    g.into = {buf};
    auto r = c.client->Get(g);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kProtocol);
  }
}

TEST(S3Client, VirtualHostedAddressing) {
  s3::CurlEngine engine{s3::CurlEngine::Options{}};
  s3::S3ClientOptions o;
  o.endpoint = "https://s3.example.com:8443/";
  o.bucket = "my.bucket";
  o.virtual_hosted = true;
  auto c = s3::S3Client::Create(o, &engine);
  ASSERT_TRUE(c);
  auto t = (*c)->MakeTarget("a/b c", "list-type=2");
  EXPECT_EQ(t.host, "my.bucket.s3.example.com:8443");
  EXPECT_EQ(t.url, "https://my.bucket.s3.example.com:8443/a/b%20c?list-type=2");
  EXPECT_EQ(t.canonical_uri, "/a/b%20c");
  o.virtual_hosted = false;
  auto p = s3::S3Client::Create(o, &engine);
  EXPECT_EQ((*p)->MakeTarget("k", "").url, "https://s3.example.com:8443/my.bucket/k");
  o.endpoint = "https://host/path";
  EXPECT_FALSE(s3::S3Client::Create(o, &engine));
}

TEST(CurlEngine, ShutdownCallsBackRetriesWaitingOutTheirBackOff) {
  std::atomic<int> called{0};
  std::atomic<bool> cancelled{false};
  {
    s3::CurlEngine engine{s3::CurlEngine::Options{}};
    // A retry's timer resubmits; at shutdown that resubmission is refused.
    engine.After(std::chrono::hours(1), [&] {
      ++called;
      engine.Submit(s3::HttpRequest{}, [&](Result<s3::HttpResponse> r) {
        cancelled = !r && r.error().code == Errc::kCancelled;
      });
    });
  }
  EXPECT_EQ(called.load(), 1) << "the waiting retry ran at shutdown";
  EXPECT_TRUE(cancelled.load()) << "and its caller heard: cancelled";
}

TEST(DeadlineTimer, RunsOnceUnlessCancelled) {
  DeadlineTimer timer;
  std::atomic<int> fired{0};
  timer.After(std::chrono::milliseconds(10), [&] { ++fired; });
  uint64_t cancelled = timer.After(std::chrono::milliseconds(10), [&] { fired += 100; });
  timer.Cancel(cancelled);
  for (int i = 0; i < 200 && fired.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(fired.load(), 1);
  EXPECT_EQ(timer.pending(), 0u);
}
