// BodyStream (the GET behind streamed reads) against a scripted HTTP/1.1
// peer on loopback: the body goes into a pipe exactly, and not one byte of
// it with the head; anything but the range asked for is refused; a cut body,
// a stalled server, an abandoned read and a pipe too small for the request
// are errors that say so, never a short success or a hang.
#include "s3rdmafs/s3/body_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "../lib/scripted_peer.h"

using namespace s3rdmafs;
using fakes::Act;
using fakes::KeepAlivePeer;

namespace {

using Clock = s3::BodyStream::Clock;

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return s;
}

std::string Partial(const std::string& body, uint64_t offset, uint64_t total, size_t declared = 0) {
  const size_t length = declared ? declared : body.size();
  return "HTTP/1.1 206 Partial Content\r\nContent-Length: " + std::to_string(length) +
         "\r\nContent-Range: bytes " + std::to_string(offset) + "-" +
         std::to_string(offset + length - 1) + "/" + std::to_string(total) + "\r\n\r\n" + body;
}

s3::HttpRequest Get(const KeepAlivePeer& peer) {
  s3::HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/bucket/key";
  req.headers.emplace_back("Range", "bytes=...");
  return req;
}

struct Pipe {
  int rd = -1, wr = -1;
  explicit Pipe(int bytes = 4 << 20) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    rd = fds[0];
    wr = fds[1];
    fcntl(wr, F_SETPIPE_SZ, bytes);  // more than the default may need fs.pipe-max-size
  }
  ~Pipe() {
    close(rd);
    close(wr);
  }
  std::string Take(size_t n) const {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      const ssize_t r = read(rd, out.data() + got, n - got);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
  }
};

Clock::time_point In(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

}  // namespace

TEST(BodyStream, TheBodyGoesIntoThePipeExactlyAndNothingOfItWithTheHead) {
  const std::string body = Pattern(300 << 10);
  const std::string reply = Partial(body, 1000, 1 << 20);
  // The head alone first, the body 30 ms later: the head's reader must not wait for, nor take, it.
  KeepAlivePeer peer({{reply, Act::kKeep, reply.size() - body.size()}});
  auto s = s3::BodyStream::Open(Get(peer), 1000, body.size(), In(5000));
  ASSERT_TRUE(s) << s.error().ToString();
  Pipe pipe;
  std::string got;
  for (size_t piece : {size_t{100} << 10, size_t{100} << 10, size_t{100} << 10}) {
    auto r = (*s)->SpliceInto(pipe.wr, piece, In(5000), nullptr);
    ASSERT_TRUE(r) << r.error().ToString();
    got += pipe.Take(piece);
  }
  EXPECT_EQ(got, body);
  EXPECT_EQ((*s)->left(), 0u);
  EXPECT_EQ((*s)->offset(), 1000u + body.size());
  auto over = (*s)->SpliceInto(pipe.wr, 1, In(100), nullptr);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::kInvalidArgument);
}

TEST(BodyStream, AnythingButTheRangeAskedForIsRefused) {
  const std::string body = Pattern(4096);
  struct Case {
    std::string reply;
    Errc code;
    const char* says;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n" + body, Errc::kProtocol, "status 200"},
      {Partial(body, 0, 8192), Errc::kProtocol, "Content-Range"},  // another range
      {Partial(body, 10, 8192, 5000), Errc::kProtocol, "not the 4096 bytes"},
      {"HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n", Errc::kPreconditionFailed,
       "412"},
      {"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\nContent-Range: bytes "
       "10-4105/8192\r\n\r\n",
       Errc::kProtocol, "not the 4096 bytes"},
  };
  for (const auto& c : cases) {
    KeepAlivePeer peer({{c.reply, Act::kClose}});
    auto s = s3::BodyStream::Open(Get(peer), 10, body.size(), In(5000));
    ASSERT_FALSE(s) << c.says;
    EXPECT_EQ(s.error().code, c.code) << s.error().ToString();
    EXPECT_NE(s.error().message.find(c.says), std::string::npos) << s.error().ToString();
    EXPECT_NE(s.error().message.find("/bucket/key"), std::string::npos) << "names the GET";
  }
  s3::HttpRequest tls;
  tls.url = "https://127.0.0.1:1/bucket/key";
  auto s = s3::BodyStream::Open(tls, 0, 10, In(1000));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kNotSupported);
}

TEST(BodyStream, ABodyCutMidWayIsAConnectionErrorSayingHowFarItCame) {
  const std::string body = Pattern(64 << 10);
  KeepAlivePeer peer({{Partial(body.substr(0, 20000), 0, 1 << 20, body.size()), Act::kClose}});
  auto s = s3::BodyStream::Open(Get(peer), 0, body.size(), In(5000));
  ASSERT_TRUE(s) << s.error().ToString();
  Pipe pipe;
  auto r = (*s)->SpliceInto(pipe.wr, body.size(), In(5000), nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kConnection);
  EXPECT_NE(r.error().message.find("after 20000 of 65536 body bytes"), std::string::npos)
      << r.error().ToString();
}

TEST(BodyStream, AStalledServerEndsTheWaitAtTheDeadline) {
  const std::string body = Pattern(64 << 10);
  KeepAlivePeer peer({{Partial(body.substr(0, 1000), 0, 1 << 20, body.size()), Act::kStall}});
  auto s = s3::BodyStream::Open(Get(peer), 0, body.size(), In(5000));
  ASSERT_TRUE(s) << s.error().ToString();
  Pipe pipe;
  const auto t0 = Clock::now();
  auto r = (*s)->SpliceInto(pipe.wr, body.size(), In(300), nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kTimedOut) << r.error().ToString();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
}

TEST(BodyStream, AnAbandonedReadStopsWaitingAtOnce) {
  const std::string body = Pattern(64 << 10);
  KeepAlivePeer peer({{Partial("", 0, 1 << 20, body.size()), Act::kStall}});
  auto s = s3::BodyStream::Open(Get(peer), 0, body.size(), In(5000));
  ASSERT_TRUE(s) << s.error().ToString();
  Pipe pipe;
  int asked = 0;
  const auto t0 = Clock::now();
  auto r = (*s)->SpliceInto(pipe.wr, body.size(), In(30000), [&] { return ++asked >= 3; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCancelled);
  EXPECT_EQ(asked, 3);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3)) << "asked between waits of 100 ms";
}

TEST(BodyStream, APipeTooSmallForTheReadIsAnErrorNotAHang) {
  // 16 pipe slots hold at most 16 socket pieces: never 2 MiB.
  const std::string body = Pattern(2 << 20);
  KeepAlivePeer peer({{Partial(body, 0, 4 << 20), Act::kKeep}});
  auto s = s3::BodyStream::Open(Get(peer), 0, body.size(), In(5000));
  ASSERT_TRUE(s) << s.error().ToString();
  Pipe pipe(64 << 10);
  const auto t0 = Clock::now();
  auto r = (*s)->SpliceInto(pipe.wr, body.size(), In(10000), nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNoSpace) << r.error().ToString();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}
