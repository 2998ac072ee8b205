// PlainHttp: ranged GETs over plain HTTP/1.1 whose body is received straight
// into the caller's spans (readv from the socket into cache blocks), instead
// of into curl's receive buffer and then copied. That copy was the largest
// user-space cost of a cold sequential read (issue 15's perf: 14-21% of the
// daemon's CPU). Internal to the s3 layer; CurlEngine runs it on its thread.
//
// What takes this path: a GET with a sink and no RDMA token, to an http:// endpoint whose
// address is known without a blocking lookup (a numeric address, or the one
// curl last connected to for that host). Everything else (TLS, names not yet
// resolved, uploads, metadata) stays with curl. Responses are framed by
// Boost.Beast's parser; a 2xx body with a Content-Length is then read by
// readv into the spans, anything else (errors, chunked bodies) through the
// parser. Connections are kept alive and reused; a reused connection that
// the server closed before answering is retried once on a fresh one (a GET
// may be sent again), as curl does.
//
// Engine thread only: nothing here locks.
#pragma once

#include <netinet/in.h>
#include <poll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/curl_engine.h"

namespace s3rdmafs::s3 {

class PlainHttp {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds stall_timeout{30000};  // no byte moved for this long
    size_t max_idle_per_host = 64;
  };
  // The response is filled in; the result says whether the exchange completed.
  using Done = std::function<void(Result<void>)>;

  explicit PlainHttp(Options options);
  ~PlainHttp();  // out of line: Exchange is complete only in the .cc
  PlainHttp(const PlainHttp&) = delete;
  PlainHttp& operator=(const PlainHttp&) = delete;

  // Whether `req` can take this path now.
  bool Accepts(const HttpRequest& req) const;
  // The address curl connected to for `url`'s host (learned from its transfers).
  void Learn(const std::string& url, const std::string& ip, long port);
  // Starts one exchange; `req` and `resp` stay alive until `done` runs.
  void Start(const HttpRequest* req, HttpResponse* resp, Done done);
  // The sockets to wait on, and how long until the nearest deadline.
  void Interest(std::vector<pollfd>* fds, int* timeout_ms) const;
  // After a poll of Interest()'s sockets (`polled`, revents filled in): moves
  // each exchange whose socket is ready as far as it goes, ends those past
  // their deadline, and calls back those that ended.
  void Advance(const std::vector<pollfd>& polled);
  // Ends every exchange with `why` (shutdown).
  void CancelAll(const Error& why);
  size_t active() const { return exchanges_.size(); }
  uint64_t connections_made() const { return connections_made_; }

 private:
  struct Exchange;
  struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;
  };
  std::optional<Endpoint> Resolve(const std::string& host_port) const;
  // A connection for `host_port`: an idle one that still looks alive, or a new one.
  Result<int> Connect(const std::string& host_port, bool* reused);
  // One step for `x`; true when it ended (callback made).
  bool Step(Exchange& x);
  void Finish(Exchange& x, Result<void> result);

  Options options_;
  std::map<std::string, Endpoint> learned_;       // host:port -> address
  std::map<std::string, std::vector<int>> idle_;  // host:port -> kept-alive sockets
  std::list<std::unique_ptr<Exchange>> exchanges_;
  uint64_t connections_made_ = 0;
};

}  // namespace s3rdmafs::s3
