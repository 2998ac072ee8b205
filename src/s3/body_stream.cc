#include "s3rdmafs/s3/body_stream.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cerrno>
#include <limits>
#include <string>

#include "s3rdmafs/common/errno_text.h"

namespace s3rdmafs::s3 {

namespace http = boost::beast::http;
using Clock = BodyStream::Clock;

namespace {

constexpr size_t kMaxHead = size_t{64} << 10;
constexpr int kSliceMs = 100;  // the longest wait between asks of `abandon`
constexpr size_t kMaxLowWater = size_t{1}
                                << 20;  // SO_RCVLOWAT at most (the kernel sizes rcvbuf by it)

int MsUntil(Clock::time_point deadline, int cap = std::numeric_limits<int>::max()) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count() + 1;
  return static_cast<int>(std::clamp<int64_t>(left, 0, cap));
}

enum class Waited { kReady, kTimedOut, kAbandoned };

// Waits until `fd` has `events`, the deadline passes, or `abandon` says stop
// (asked between waits of at most kSliceMs).
Waited WaitFor(int fd, short events, Clock::time_point deadline,
               const std::function<bool()>& abandon) {
  for (;;) {
    if (abandon && abandon()) return Waited::kAbandoned;
    const int ms = MsUntil(deadline, kSliceMs);
    if (ms == 0) return Waited::kTimedOut;
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, ms);
    if (r > 0) return Waited::kReady;
    if (r < 0 && errno != EINTR) return Waited::kReady;  // the next call reports it
  }
}

// The error for a wait that did not end ready.
Error NotReady(Waited w, const HttpRequest& req, const std::string& what);

struct Url {
  std::string host, port = "80", target = "/";
};

bool ParseUrl(const std::string& url, Url* out) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) return false;
  const size_t slash = url.find('/', kScheme.size());
  std::string authority = url.substr(
      kScheme.size(), slash == std::string::npos ? std::string::npos : slash - kScheme.size());
  if (slash != std::string::npos) out->target = url.substr(slash);
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    out->port = authority.substr(colon + 1);
    authority.resize(colon);
  }
  if (authority.size() > 2 && authority.front() == '[' && authority.back() == ']')
    authority = authority.substr(1, authority.size() - 2);
  out->host = authority;
  return !out->host.empty() && !out->port.empty();
}

Error Failed(Errc code, const HttpRequest& req, const std::string& what) {
  return Error(code, "GET " + req.url + " (stream): " + what);
}

Error NotReady(Waited w, const HttpRequest& req, const std::string& what) {
  return w == Waited::kAbandoned ? Failed(Errc::kCancelled, req, "abandoned while " + what)
                                 : Failed(Errc::kTimedOut, req, what + " timed out");
}

// A connected, non-blocking socket to the URL's host.
Result<int> Connect(const HttpRequest& req, const Url& url, Clock::time_point deadline,
                    const std::function<bool()>& abandon) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0)
    return tl::unexpected(
        Failed(Errc::kConnection, req, "cannot resolve " + url.host + ": " + gai_strerror(rc)));
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    return tl::unexpected(
        Failed(Errc::kConnection, req, std::string("socket: ") + ErrnoText(errno)));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int rc = connect(fd, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  int err = rc == 0 ? 0 : errno;
  if (err == EINPROGRESS) {
    if (const Waited w = WaitFor(fd, POLLOUT, deadline, abandon); w != Waited::kReady) {
      close(fd);
      return tl::unexpected(NotReady(w, req, "connecting"));
    }
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  }
  if (err != 0) {
    close(fd);
    return tl::unexpected(
        Failed(Errc::kConnection, req, std::string("connect: ") + ErrnoText(err)));
  }
  return fd;
}

Result<void> SendAll(int fd, const HttpRequest& req, const std::string& out,
                     Clock::time_point deadline, const std::function<bool()>& abandon) {
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (const Waited w = WaitFor(fd, POLLOUT, deadline, abandon); w != Waited::kReady)
        return tl::unexpected(NotReady(w, req, "sending"));
    } else {
      return tl::unexpected(
          Failed(Errc::kConnection, req, std::string("send: ") + ErrnoText(errno)));
    }
  }
  return {};
}

// The response head, and not one body byte: the head is peeked at until its
// end is in, then read to exactly there. SO_RCVLOWAT makes each wait last
// until more than what was peeked has come.
Result<std::string> ReadHead(int fd, const HttpRequest& req, Clock::time_point deadline,
                             const std::function<bool()>& abandon) {
  std::string buf(kMaxHead, '\0');
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_PEEK);
    if (n == 0) return tl::unexpected(Failed(Errc::kConnection, req, "closed before the head"));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN)
      return tl::unexpected(
          Failed(Errc::kConnection, req, std::string("recv: ") + ErrnoText(errno)));
    const size_t have = n < 0 ? 0 : static_cast<size_t>(n);
    const size_t end = std::string_view(buf.data(), have).find("\r\n\r\n");
    if (end != std::string_view::npos) {
      const size_t head = end + 4;
      int low = 1;
      setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof low);
      if (recv(fd, buf.data(), head, 0) != static_cast<ssize_t>(head))
        return tl::unexpected(Failed(Errc::kConnection, req, "recv of the head failed"));
      buf.resize(head);
      return buf;
    }
    if (have == buf.size())
      return tl::unexpected(Failed(Errc::kProtocol, req, "response head too large"));
    const int low = static_cast<int>(have + 1);
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof low);
    if (const Waited w = WaitFor(fd, POLLIN, deadline, abandon); w != Waited::kReady)
      return tl::unexpected(NotReady(w, req, "waiting for the response head"));
  }
}

}  // namespace

Result<std::unique_ptr<BodyStream>> BodyStream::Open(const HttpRequest& req, uint64_t offset,
                                                     uint64_t length, Clock::time_point deadline,
                                                     const std::function<bool()>& abandon) {
  Url url;
  if (req.method != "GET" || !ParseUrl(req.url, &url) || length == 0)
    return tl::unexpected(Failed(Errc::kNotSupported, req, "plain http GETs of a range only"));
  auto fd = Connect(req, url, deadline, abandon);
  if (!fd) return tl::unexpected(fd.error());
  auto stream = std::unique_ptr<BodyStream>(new BodyStream(*fd, offset, length));
  std::string out = "GET " + url.target + " HTTP/1.1\r\n";
  for (const auto& [k, v] : req.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (auto s = SendAll(*fd, req, out, deadline, abandon); !s) return tl::unexpected(s.error());
  auto head = ReadHead(*fd, req, deadline, abandon);
  if (!head) return tl::unexpected(head.error());

  http::response_parser<http::buffer_body> parser;
  parser.header_limit(kMaxHead);
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(*head), ec);
  if (!parser.is_header_done())
    return tl::unexpected(Failed(Errc::kProtocol, req, "bad response head: " + ec.message()));
  const auto& h = parser.get();
  const int status = static_cast<int>(h.result_int());
  if (status != 206)
    return tl::unexpected(Failed(status == 412 ? Errc::kPreconditionFailed : Errc::kProtocol, req,
                                 "status " + std::to_string(status) + ", not 206"));
  const auto content_length = parser.content_length();
  if (parser.chunked() || !content_length || *content_length != length)
    return tl::unexpected(
        Failed(Errc::kProtocol, req,
               "the body is not the " + std::to_string(length) + " bytes asked for"));
  const std::string want =
      "bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) + "/";
  const auto range = h[http::field::content_range];
  if (range.substr(0, want.size()) != want)
    return tl::unexpected(
        Failed(Errc::kProtocol, req, "Content-Range '" + std::string(range) + "', not " + want));
  return stream;
}

BodyStream::~BodyStream() { close(fd_); }

Result<void> BodyStream::SpliceInto(int pipe_wr, size_t n, Clock::time_point deadline,
                                    const std::function<bool()>& abandon) {
  if (n > left_)
    return MakeError(Errc::kInvalidArgument, "splice of " + std::to_string(n) +
                                                 " bytes from a stream with " +
                                                 std::to_string(left_) + " left");
  size_t moved = 0;
  while (moved < n) {
    const ssize_t r =
        splice(fd_, nullptr, pipe_wr, nullptr, n - moved, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (r > 0) {
      moved += static_cast<size_t>(r);
      offset_ += static_cast<uint64_t>(r);
      left_ -= static_cast<uint64_t>(r);
      continue;
    }
    const uint64_t got = length_ - left_;
    if (r == 0)
      return MakeError(Errc::kConnection, "connection closed after " + std::to_string(got) +
                                              " of " + std::to_string(length_) + " body bytes");
    if (errno == EINTR) continue;
    if (errno != EAGAIN)
      return MakeError(Errc::kConnection,
                       std::string("splice from the connection: ") + ErrnoText(errno));
    // Nothing moved: the socket is empty, or the pipe is full.
    pollfd room{pipe_wr, POLLOUT, 0};
    if (poll(&room, 1, 0) == 0)
      return MakeError(Errc::kNoSpace, "the pipe filled before " + std::to_string(n) +
                                           " bytes were in (small socket pieces)");
    if (abandon && abandon()) return MakeError(Errc::kCancelled, "the read was abandoned");
    const int ms = MsUntil(deadline, kSliceMs);
    if (ms == 0)
      return MakeError(Errc::kTimedOut, "no body byte came in time (" + std::to_string(got) +
                                            " of " + std::to_string(length_) + " received)");
    // Wake when the rest of this read is in, not for every segment: from a
    // server slower than the reader each wake-up would bring a few KiB.
    const int want = static_cast<int>(std::min<size_t>(n - moved, kMaxLowWater));
    if (want != low_water_ && setsockopt(fd_, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0)
      low_water_ = want;
    pollfd in{fd_, POLLIN, 0};
    if (poll(&in, 1, ms) < 0 && errno != EINTR)
      return MakeError(Errc::kConnection, std::string("poll: ") + ErrnoText(errno));
  }
  return {};
}

}  // namespace s3rdmafs::s3
