#include "plain_http.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "s3rdmafs/common/errno_text.h"

namespace s3rdmafs::s3 {

namespace http = boost::beast::http;

namespace {

constexpr size_t kMaxHead = size_t{64} << 10;
constexpr size_t kMaxInMemoryBody = 64u << 20;  // error documents; as CurlEngine
constexpr size_t kMaxIov = 64;
constexpr uint64_t kWakeBytes = uint64_t{256} << 10;  // SO_RCVLOWAT while a body streams in

// "http://authority/target" -> authority, target; false if not plain http.
bool SplitUrl(const std::string& url, std::string* authority, std::string* target) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) return false;
  const size_t slash = url.find('/', kScheme.size());
  *authority = url.substr(kScheme.size(),
                          slash == std::string::npos ? std::string::npos : slash - kScheme.size());
  *target = slash == std::string::npos ? "/" : url.substr(slash);
  return !authority->empty();
}

// A numeric host:port ("10.0.0.1:9000", "[fd00::1]:80", "10.0.0.1").
bool ParseNumeric(const std::string& authority, sockaddr_storage* addr, socklen_t* len) {
  std::string host = authority;
  unsigned port = 80;
  const size_t colon = authority.rfind(':');
  const size_t bracket = authority.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    host = authority.substr(0, colon);
    char* end = nullptr;
    const unsigned long p = strtoul(authority.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || p == 0 || p > 65535) return false;
    port = static_cast<unsigned>(p);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(addr);
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr) != 1)
      return false;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(addr);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) return false;
  a4->sin_family = AF_INET;
  a4->sin_port = htons(static_cast<uint16_t>(port));
  *len = sizeof(sockaddr_in);
  return true;
}

std::string SysError(const char* what) { return std::string(what) + ": " + ErrnoText(errno); }

}  // namespace

struct PlainHttp::Exchange {
  enum class Phase { kConnect, kSend, kHead, kBody, kParsedBody };
  const HttpRequest* req = nullptr;
  HttpResponse* resp = nullptr;
  Done done;
  std::string authority;
  std::string out;  // the request head
  size_t sent = 0;
  int fd = -1;
  bool reused = false;   // a kept-alive connection: the server may have closed it
  bool retried = false;  // already moved to a fresh connection once
  bool any_byte = false;
  Phase phase = Phase::kConnect;
  std::string in;  // received, not yet consumed by the parser
  std::optional<http::response_parser<http::buffer_body>> parser;
  size_t span_index = 0, span_offset = 0;
  uint64_t body_left = 0;  // the fast path's bytes still to come
  int low_water = 1;       // the socket's SO_RCVLOWAT
  Clock::time_point deadline;

  void SetLowWater(uint64_t bytes) {
    const int want = static_cast<int>(std::max<uint64_t>(bytes, 1));
    if (want == low_water) return;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0) low_water = want;
  }

  bool Sinks() const { return !req->sink.empty() && resp->status >= 200 && resp->status < 300; }
  void NewParser() {
    parser.emplace();
    // Not boost::none: Boost 1.74 compares a length against an empty limit as exceeded.
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser->header_limit(kMaxHead);
    parser->eager(false);
  }
  // Body bytes of the response: into the spans (2xx) or the in-memory body.
  Result<void> Deliver(const char* p, size_t n) {
    if (!Sinks()) {
      if (resp->body.size() + n > kMaxInMemoryBody)
        return MakeError(Errc::kProtocol, "response body too large");
      resp->body.append(p, n);
      return {};
    }
    while (n > 0) {
      if (span_index >= req->sink.size())
        return MakeError(Errc::kProtocol, "server sent more bytes than requested");
      auto span = req->sink[span_index];
      const size_t take = std::min(n, span.size() - span_offset);
      memcpy(span.data() + span_offset, p, take);
      p += take;
      n -= take;
      Landed(take);
    }
    return {};
  }
  // `n` more body bytes are in the spans (copied, or read there by readv).
  void Landed(size_t n) {
    resp->sink_bytes += n;
    while (n > 0) {
      const size_t take = std::min(n, req->sink[span_index].size() - span_offset);
      n -= take;
      span_offset += take;
      if (span_offset == req->sink[span_index].size()) {
        ++span_index;
        span_offset = 0;
      }
    }
  }
};

PlainHttp::PlainHttp(Options options) : options_(options) {}

PlainHttp::~PlainHttp() {
  CancelAll(Error(Errc::kCancelled, "HTTP engine is shutting down"));
  for (auto& [host, fds] : idle_)
    for (int fd : fds) close(fd);
}

std::optional<PlainHttp::Endpoint> PlainHttp::Resolve(const std::string& authority) const {
  Endpoint e;
  if (ParseNumeric(authority, &e.addr, &e.len)) return e;
  auto it = learned_.find(authority);
  if (it != learned_.end()) return it->second;
  return std::nullopt;
}

bool PlainHttp::Accepts(const HttpRequest& req) const {
  if (req.method != "GET" || req.sink.empty() || !req.body.empty()) return false;
  // RDMA GETs stay with curl: their bodies are empty (no copy to save), and
  // this path's one resend on a fresh connection must never resend a token.
  for (const auto& [name, value] : req.headers)
    if (boost::beast::iequals(name, "x-amz-rdma-token")) return false;
  std::string authority, target;
  return SplitUrl(req.url, &authority, &target) && Resolve(authority).has_value();
}

void PlainHttp::Learn(const std::string& url, const std::string& ip, long port) {
  std::string authority, target;
  if (!SplitUrl(url, &authority, &target) || ip.empty() || port <= 0 || port > 65535) return;
  Endpoint e;
  const std::string numeric =
      (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
  if (!ParseNumeric(numeric, &e.addr, &e.len)) return;
  learned_[authority] = e;
}

Result<int> PlainHttp::Connect(const std::string& authority, bool* reused) {
  auto& idle = idle_[authority];
  while (!idle.empty()) {
    const int fd = idle.back();
    idle.pop_back();
    // A kept-alive connection that is readable now was closed by the server
    // (or sent something unasked): not one to send on.
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) == 0) {
      *reused = true;
      return fd;
    }
    close(fd);
  }
  *reused = false;
  auto e = Resolve(authority);
  if (!e) return MakeError(Errc::kConnection, "no address known for " + authority);
  const int fd = socket(e->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return MakeError(Errc::kConnection, SysError("socket"));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&e->addr), e->len) != 0 &&
      errno != EINPROGRESS) {
    Error err(Errc::kConnection, SysError(("connect to " + authority).c_str()));
    close(fd);
    return tl::unexpected(err);
  }
  ++connections_made_;
  return fd;
}

void PlainHttp::Start(const HttpRequest* req, HttpResponse* resp, Done done) {
  auto x = std::make_unique<Exchange>();
  x->req = req;
  x->resp = resp;
  x->done = std::move(done);
  std::string target;
  SplitUrl(req->url, &x->authority, &target);
  x->out = "GET " + target + " HTTP/1.1\r\n";
  for (const auto& [k, v] : req->headers) x->out += k + ": " + v + "\r\n";
  x->out += "\r\n";
  x->NewParser();
  auto connected = Connect(x->authority, &x->reused);
  if (!connected) {
    Finish(*x, tl::unexpected(connected.error()));
    return;
  }
  x->fd = *connected;
  x->phase = x->reused ? Exchange::Phase::kSend : Exchange::Phase::kConnect;
  x->deadline = Clock::now() + options_.connect_timeout;
  exchanges_.push_back(std::move(x));
  if (Step(*exchanges_.back())) exchanges_.pop_back();
}

void PlainHttp::Interest(std::vector<pollfd>* fds, int* timeout_ms) const {
  const auto now = Clock::now();
  for (const auto& x : exchanges_) {
    const bool out = x->phase == Exchange::Phase::kConnect || x->phase == Exchange::Phase::kSend;
    fds->push_back({x->fd, static_cast<short>(out ? POLLOUT : POLLIN), 0});
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(x->deadline - now).count() + 1;
    *timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, *timeout_ms));
  }
}

void PlainHttp::Advance(const std::vector<pollfd>& polled) {
  if (exchanges_.empty()) return;
  std::unordered_set<int> ready;
  for (const auto& p : polled)
    if (p.revents != 0) ready.insert(p.fd);
  const auto now = Clock::now();
  for (auto it = exchanges_.begin(); it != exchanges_.end();) {
    Exchange& x = **it;
    bool ended = false;
    if (ready.count(x.fd)) {
      ended = Step(x);
    } else if (now >= x.deadline) {
      const bool connecting = x.phase == Exchange::Phase::kConnect;
      Finish(x, MakeError(Errc::kTimedOut,
                          connecting ? "connect to " + x.authority + " timed out"
                                     : "no byte moved for " +
                                           std::to_string(options_.stall_timeout.count()) + " ms"));
      ended = true;
    }
    it = ended ? exchanges_.erase(it) : std::next(it);
  }
}

void PlainHttp::CancelAll(const Error& why) {
  auto all = std::move(exchanges_);
  exchanges_.clear();
  for (auto& x : all) Finish(*x, tl::unexpected(why));
}

void PlainHttp::Finish(Exchange& x, Result<void> result) {
  if (x.fd >= 0) close(x.fd);
  x.fd = -1;
  if (!result) {
    Error e = result.error();
    e.message = "GET " + x.req->url + ": " + e.message;
    x.done(tl::unexpected(e));
    return;
  }
  x.done({});
}

bool PlainHttp::Step(Exchange& x) {
  using Phase = Exchange::Phase;
  const auto progressed = [&] { x.deadline = Clock::now() + options_.stall_timeout; };
  // A kept-alive connection the server had closed: once more on a fresh one.
  const auto fresh_or_fail = [&](const std::string& what) -> bool {
    if (!x.reused || x.retried || x.any_byte) {
      Finish(x, MakeError(Errc::kConnection, what));
      return true;
    }
    close(x.fd);
    x.fd = -1;
    x.retried = true;
    x.sent = 0;
    x.in.clear();
    x.NewParser();
    auto c = Connect(x.authority, &x.reused);
    if (!c) {
      Finish(x, tl::unexpected(c.error()));
      return true;
    }
    x.fd = *c;
    x.phase = x.reused ? Phase::kSend : Phase::kConnect;
    x.deadline = Clock::now() + options_.connect_timeout;
    return false;
  };
  for (;;) {
    switch (x.phase) {
      case Phase::kConnect: {
        pollfd p{x.fd, POLLOUT, 0};
        if (poll(&p, 1, 0) == 0) return false;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(x.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          Finish(x,
                 MakeError(Errc::kConnection, "connect to " + x.authority + ": " + ErrnoText(err)));
          return true;
        }
        x.phase = Phase::kSend;
        progressed();
        break;
      }
      case Phase::kSend: {
        while (x.sent < x.out.size()) {
          const ssize_t n = send(x.fd, x.out.data() + x.sent, x.out.size() - x.sent, MSG_NOSIGNAL);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
          if (n < 0) {
            if (fresh_or_fail(SysError("send"))) return true;
            break;  // a fresh connection: start over
          }
          x.sent += static_cast<size_t>(n);
        }
        if (x.sent < x.out.size()) break;
        x.phase = Phase::kHead;
        progressed();
        break;
      }
      case Phase::kHead: {
        const size_t had = x.in.size();
        x.in.resize(had + (size_t{16} << 10));
        const ssize_t n = recv(x.fd, x.in.data() + had, x.in.size() - had, 0);
        x.in.resize(had + static_cast<size_t>(std::max<ssize_t>(n, 0)));
        if (n < 0 && errno == EINTR) break;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (n <= 0) {
          const std::string what =
              n == 0 ? "connection closed before the response" : SysError("recv");
          if (fresh_or_fail(what)) return true;
          break;
        }
        x.any_byte = true;
        progressed();
        boost::beast::error_code ec;
        // Beast consumes what it has parsed (the status line, whole fields)
        // even when it needs more: the rest is offered again with what follows.
        const size_t used = x.parser->put(boost::asio::buffer(x.in), ec);
        const std::string offered = x.in.substr(0, 300);
        x.in.erase(0, used);
        if (ec == http::error::need_more) {
          if (x.in.size() > kMaxHead) {
            Finish(x, MakeError(Errc::kProtocol, "response head too large"));
            return true;
          }
          break;
        }
        if (ec || !x.parser->is_header_done()) {
          std::string shown = offered;
          for (char& c : shown)
            if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
              c = '.';
          Finish(x, MakeError(Errc::kProtocol,
                              "bad response head (" + ec.message() + "): '" + shown + "'"));
          return true;
        }
        const auto& h = x.parser->get();
        x.resp->status = static_cast<int>(h.result_int());
        x.resp->headers.clear();
        for (const auto& f : h) {
          std::string name(f.name_string());
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          x.resp->headers.emplace_back(std::move(name), std::string(f.value()));
        }
        const auto length = x.parser->content_length();
        if (x.Sinks() && length && !x.parser->chunked()) {
          // The fast path: the rest of the body goes by readv into the spans.
          uint64_t room = 0;
          for (auto s : x.req->sink) room += s.size();
          if (*length > room || x.in.size() > *length) {
            Finish(x, MakeError(Errc::kProtocol, "server sent more bytes than requested"));
            return true;
          }
          x.body_left = *length - x.in.size();
          (void)x.Deliver(x.in.data(), x.in.size());  // fits: checked above
          x.in.clear();
          x.phase = Phase::kBody;
        } else {
          x.parser->eager(true);
          x.phase = Phase::kParsedBody;
          if (x.in.empty() && !x.parser->is_done()) break;
        }
        break;
      }
      case Phase::kBody: {
        while (x.body_left > 0) {
          iovec iov[kMaxIov];
          size_t count = 0;
          uint64_t want = x.body_left;
          size_t index = x.span_index, offset = x.span_offset;
          while (want > 0 && count < kMaxIov && index < x.req->sink.size()) {
            auto span = x.req->sink[index];
            const size_t take = std::min<uint64_t>(want, span.size() - offset);
            iov[count++] = {span.data() + offset, take};
            want -= take;
            ++index;
            offset = 0;
          }
          const ssize_t n = readv(x.fd, iov, static_cast<int>(count));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // Wake when a good piece is there, not for every segment: from a
            // slower server each wake-up brought a few KiB (context switches
            // and polls were the largest cost left after the copy).
            x.SetLowWater(std::min<uint64_t>(x.body_left, kWakeBytes));
            return false;
          }
          if (n <= 0) {
            const uint64_t length = x.resp->sink_bytes + x.body_left;
            Finish(x, MakeError(Errc::kConnection,
                                (n == 0 ? std::string("connection closed") : SysError("recv")) +
                                    " after " + std::to_string(x.resp->sink_bytes) + " of " +
                                    std::to_string(length) + " body bytes"));
            return true;
          }
          progressed();
          x.body_left -= static_cast<uint64_t>(n);
          x.Landed(static_cast<size_t>(n));
        }
        // Whole: the connection goes back for the next request if both ends keep it.
        x.SetLowWater(1);
        if (x.parser->keep_alive() && idle_[x.authority].size() < options_.max_idle_per_host) {
          idle_[x.authority].push_back(x.fd);
          x.fd = -1;
        }
        Finish(x, {});
        return true;
      }
      case Phase::kParsedBody: {
        // Errors, chunked bodies, bodies framed by the connection's end:
        // Beast decodes them, a buffer at a time.
        boost::beast::error_code ec;
        while (!x.in.empty() && !x.parser->is_done()) {
          char out[64 * 1024];
          auto& body = x.parser->get().body();
          body.data = out;
          body.size = sizeof out;
          const size_t used = x.parser->put(boost::asio::buffer(x.in), ec);
          const size_t produced = sizeof out - body.size;
          x.in.erase(0, used);
          if (auto d = x.Deliver(out, produced); !d) {
            Finish(x, tl::unexpected(d.error()));
            return true;
          }
          if (ec == http::error::need_buffer) {
            ec = {};
            continue;
          }
          if (ec == http::error::need_more) break;  // the rest of what is in `in` is needed
          if (ec) {
            Finish(x, MakeError(Errc::kProtocol, "bad response body: " + ec.message()));
            return true;
          }
        }
        if (x.parser->is_done()) {
          if (x.in.empty() && x.parser->keep_alive() &&
              idle_[x.authority].size() < options_.max_idle_per_host) {
            idle_[x.authority].push_back(x.fd);
            x.fd = -1;
          }
          Finish(x, {});
          return true;
        }
        char buf[64 * 1024];
        const ssize_t n = recv(x.fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) break;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (n < 0) {
          Finish(x, MakeError(Errc::kConnection, SysError("recv")));
          return true;
        }
        if (n == 0) {  // the end of a body framed by it, or a cut one
          ec = {};
          x.parser->put_eof(ec);
          if (ec || !x.parser->is_done()) {
            Finish(x, MakeError(Errc::kConnection, "connection closed inside the response body"));
            return true;
          }
          Finish(x, {});
          return true;
        }
        x.in.append(buf, static_cast<size_t>(n));
        progressed();
        break;
      }
    }
  }
}

}  // namespace s3rdmafs::s3
