// What the RDMA fetcher and the RDMA uploader share about one RDMA endpoint
// (internal to the fetch layer): whether to try RDMA now, and the three ways
// a request can end badly. A decline (501, or a server that ignored the token)
// sends everything over HTTP for `backoff`; a failure with a reply redoes that
// one request over HTTP; a request with no reply may still be followed by a
// late RDMA operation on its window, so the connection is retired first (and
// RdmaLinks remakes it in the background).
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "s3rdmafs/common/log.h"
#include "s3rdmafs/fetch/rdma_links.h"
#include "s3rdmafs/fetch/rdma_range_fetcher.h"

namespace s3rdmafs::fetch {

class RdmaPath {
 public:
  RdmaPath(RdmaLinks* links, size_t link, TransportCounters* counters,
           std::chrono::milliseconds backoff)
      : links_(links), link_(link), counters_(counters), backoff_(backoff) {}

  // The connection to use now, or null: none live, or the server declined
  // RDMA on this one (a new connection clears that).
  std::shared_ptr<rdma::TokenSource> Usable() const {
    uint64_t generation = 0;
    auto conn = links_->Current(link_, &generation);
    if (!conn) return nullptr;
    if (generation == declined_generation_.load() &&
        Clock::now().time_since_epoch().count() < declined_until_.load())
      return nullptr;
    return conn;
  }
  // `what`: "GET" or "PUT", for the log.
  void Declined(const std::string& why, const char* what) {
    ++counters_->fallbacks_declined;
    declined_generation_ = links_->generation(link_);
    declined_until_ = (Clock::now() + backoff_).time_since_epoch().count();
    LOG_WARN(
        "RDMA %s declined by the server (%s): HTTP for the next %lld s", what, why.c_str(),
        static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(backoff_).count()));
  }
  void Failed(const Error& e, const char* what) {
    ++counters_->fallbacks_failed;
    LOG_WARN("RDMA %s failed (%s): retrying over HTTP", what, e.ToString().c_str());
  }
  // No reply, and the request's window was invalidated: nothing of it can
  // land any more, so only this request is redone over HTTP.
  void Fenced(const Error& e, const char* what) {
    ++counters_->windows_fenced;
    ++counters_->fallbacks_failed;
    if (e.code != Errc::kCancelled)
      LOG_WARN("RDMA %s lost its reply (%s): its window is invalidated; retrying over HTTP", what,
               e.ToString().c_str());
  }
  // No reply, and the window could not be fenced alone: the server may still
  // be working on the token. `conn` is retired before anything else touches
  // the request's memory.
  void LostReply(const std::shared_ptr<rdma::TokenSource>& conn, const Error& e, const char* what) {
    if (links_->Lost(link_, conn)) {
      if (e.code == Errc::kCancelled)
        LOG_INFO("RDMA requests cancelled at shutdown: retiring the RDMA connection");
      else
        LOG_ERROR(
            "RDMA %s lost its reply (%s): retired the RDMA connection; HTTP until it is remade",
            what, e.ToString().c_str());
      ++counters_->connections_retired;
    }
    ++counters_->fallbacks_failed;
  }
  // The server answered that it does not know `conn` (it restarted): the
  // request is redone over HTTP and the connection remade, with no backoff.
  void Gone(const std::shared_ptr<rdma::TokenSource>& conn, const Error& e, const char* what) {
    ++counters_->fallbacks_failed;
    if (links_->Lost(link_, conn))
      LOG_WARN(
          "RDMA %s: the server no longer knows this connection (%s): reconnecting, HTTP "
          "meanwhile",
          what, e.message.c_str());
  }
  TransportCounters* counters() const { return counters_; }

 private:
  using Clock = std::chrono::steady_clock;
  RdmaLinks* links_;
  size_t link_;
  TransportCounters* counters_;
  std::chrono::milliseconds backoff_;
  std::atomic<uint64_t> declined_generation_{0};
  std::atomic<int64_t> declined_until_{0};
};

// The RDMA endpoints of a mount. With one, every request uses it (through
// the S3 endpoint its handshake went to, the first). With one per S3
// endpoint (gateways, each with its own listener), a request takes the path
// of the endpoint its bytes go to, so one file's blocks come by RDMA from
// several gateways; an endpoint without a live connection goes over HTTP.
// An endpoint may have several rails (connections to several of its
// addresses, or several to one): its requests take them in turn, skipping
// any that is down or declined, so a server's QPs and NICs share the load.
class RdmaPaths {
 public:
  RdmaPaths(std::shared_ptr<RdmaLinks> links, TransportCounters* counters,
            std::chrono::milliseconds backoff)
      : links_(std::move(links)), counters_(counters) {
    for (size_t i = 0; i < links_->size(); ++i) {
      const size_t e = links_->endpoint(i);
      if (rails_.size() <= e) rails_.resize(e + 1);
      paths_.push_back(std::make_unique<RdmaPath>(links_.get(), i, counters, backoff));
      rails_[e].push_back(paths_.back().get());
    }
    next_ = std::make_unique<std::atomic<uint64_t>[]>(rails_.size());
  }
  struct Route {
    RdmaPath* path;                           // null: no RDMA there
    std::shared_ptr<rdma::TokenSource> conn;  // what the request's token names
    size_t endpoint;
  };
  Route For(const s3::RdmaStore& client, std::string_view key, uint64_t offset) const {
    const size_t e = rails_.size() == 1 ? 0 : client.EndpointFor(key, offset);
    if (e >= rails_.size() || rails_[e].empty()) return {nullptr, nullptr, e};
    const auto& rails = rails_[e];
    const uint64_t first = next_[e].fetch_add(1, std::memory_order_relaxed);
    for (size_t k = 0; k < rails.size(); ++k) {
      RdmaPath* path = rails[(first + k) % rails.size()];
      if (auto conn = path->Usable()) return {path, std::move(conn), e};
    }
    return {nullptr, nullptr, e};
  }
  TransportCounters* counters() const { return counters_; }

 private:
  std::shared_ptr<RdmaLinks> links_;
  TransportCounters* counters_;
  std::vector<std::unique_ptr<RdmaPath>> paths_;   // one per link
  std::vector<std::vector<RdmaPath*>> rails_;      // by S3 endpoint
  std::unique_ptr<std::atomic<uint64_t>[]> next_;  // by S3 endpoint: the next rail to try
};

}  // namespace s3rdmafs::fetch
