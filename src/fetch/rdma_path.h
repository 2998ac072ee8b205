// What the RDMA fetcher and the RDMA uploader share about one RDMA endpoint
// (internal to the fetch layer): whether to try RDMA now, and the three ways
// a request can end badly. A decline (501, or a server that ignored the token)
// sends everything over HTTP for `backoff`; a failure with a reply redoes that
// one request over HTTP; a request with no reply may still be followed by a
// late RDMA operation on its window, so the registration is retired first.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "s3rdmafs/common/log.h"
#include "s3rdmafs/fetch/rdma_range_fetcher.h"

namespace s3rdmafs::fetch {

class RdmaPath {
 public:
  RdmaPath(std::shared_ptr<rdma::TokenSource> conn, TransportCounters* counters,
           std::chrono::milliseconds backoff)
      : conn_(std::move(conn)), counters_(counters), backoff_(backoff) {}

  bool Usable() const {
    return !conn_->retired() && Clock::now().time_since_epoch().count() >= declined_until_.load();
  }
  Result<std::string> TokenFor(const void* addr, uint64_t size) const {
    return conn_->TokenFor(addr, size);
  }
  // `what`: "GET" or "PUT", for the log.
  void Declined(const std::string& why, const char* what) {
    ++counters_->fallbacks_declined;
    declined_until_ = (Clock::now() + backoff_).time_since_epoch().count();
    LOG_WARN(
        "RDMA %s declined by the server (%s): HTTP for the next %lld s", what, why.c_str(),
        static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(backoff_).count()));
  }
  void Failed(const Error& e, const char* what) {
    ++counters_->fallbacks_failed;
    LOG_WARN("RDMA %s failed (%s): retrying over HTTP", what, e.ToString().c_str());
  }
  void LostReply(const Error& e, const char* what) {
    if (!conn_->retired()) {
      if (e.code == Errc::kCancelled)
        LOG_INFO("RDMA requests cancelled at shutdown: retiring the RDMA connection");
      else
        LOG_ERROR("RDMA %s lost its reply (%s): retiring the RDMA connection, continuing over HTTP",
                  what, e.ToString().c_str());
      conn_->Retire();
      ++counters_->connections_retired;
    }
    ++counters_->fallbacks_failed;
  }
  TransportCounters* counters() const { return counters_; }

 private:
  using Clock = std::chrono::steady_clock;
  std::shared_ptr<rdma::TokenSource> conn_;
  TransportCounters* counters_;
  std::chrono::milliseconds backoff_;
  std::atomic<int64_t> declined_until_{0};
};

// The RDMA endpoints of a mount. With one, every request uses it (through
// the S3 endpoint its handshake went to, the first). With one per S3
// endpoint (gateways, each with its own listener), a request takes the path
// of the endpoint its bytes go to, so one file's blocks come by RDMA from
// several gateways; an endpoint whose connection could not be made has none.
class RdmaPaths {
 public:
  RdmaPaths(const std::vector<std::shared_ptr<rdma::TokenSource>>& conns,
            TransportCounters* counters, std::chrono::milliseconds backoff)
      : counters_(counters) {
    for (auto& c : conns)
      paths_.push_back(c ? std::make_unique<RdmaPath>(c, counters, backoff) : nullptr);
  }
  struct Route {
    RdmaPath* path;  // null: no RDMA there
    size_t endpoint;
  };
  Route For(const s3::S3Client& client, std::string_view key, uint64_t offset) const {
    if (paths_.size() == 1) return {paths_[0].get(), 0};
    size_t e = client.EndpointFor(key, offset);
    return {e < paths_.size() ? paths_[e].get() : nullptr, e};
  }
  TransportCounters* counters() const { return counters_; }

 private:
  TransportCounters* counters_;
  std::vector<std::unique_ptr<RdmaPath>> paths_;
};

}  // namespace s3rdmafs::fetch
