// The mount's RDMA connections, one per RDMA endpoint, and the one thread
// that remakes them. A connection ends when a request loses its reply (it is
// retired first, so no late transfer reaches reused memory) or when its peer
// goes away (a restarted server, a removed device); one that could not be
// made at mount time counts as ended too. The thread then makes a new one in
// the background, after a pause that doubles up to `max_retry`, and the
// mount returns to RDMA without a remount. Requests never wait for it: an
// endpoint without a live connection goes over HTTP meanwhile.
// Thread-safety: every method may be called from any thread; Stop() (or the
// destructor) by the owner before what `connect` uses goes away.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/rdma/token_source.h"

namespace s3rdmafs::fetch {

class RdmaLinks {
 public:
  using Connect = std::function<Result<std::shared_ptr<rdma::TokenSource>>()>;
  struct Link {
    std::string name;  // for the log: "10.0.0.1:7471", "DC target"
    Connect connect;
    std::shared_ptr<rdma::TokenSource> first;  // made at mount time; null if that failed
    // The S3 endpoint whose server this connection belongs to (its handshake
    // went there, and so must every request that names its memory). Several
    // links may share one: rails (several addresses or NICs of one server,
    // several connections to one address).
    size_t endpoint = 0;
  };
  struct Options {
    std::chrono::milliseconds first_retry{1000};
    std::chrono::milliseconds max_retry{30000};
    std::chrono::milliseconds health_check{500};  // how often peers' departures are looked for
  };

  RdmaLinks(std::vector<Link> links, Options options);
  ~RdmaLinks();
  RdmaLinks(const RdmaLinks&) = delete;
  RdmaLinks& operator=(const RdmaLinks&) = delete;

  // Joins the thread (waiting out a connection attempt in progress) and
  // drops every connection. Idempotent.
  void Stop();

  size_t size() const { return slots_.size(); }
  size_t endpoint(size_t i) const { return slots_[i].link.endpoint; }  // fixed at construction
  // Link i's connection if it is usable now, else null; *generation (if
  // given) is the link's generation, read under the same lock.
  std::shared_ptr<rdma::TokenSource> Current(size_t i, uint64_t* generation = nullptr) const;
  // A request on `conn` (link i) lost its reply: retires it (if not yet) and
  // has the thread remake the link. Returns true if this call retired it.
  bool Lost(size_t i, const std::shared_ptr<rdma::TokenSource>& conn);
  // Bumped each time link i gets a new connection.
  uint64_t generation(size_t i) const;

  size_t connected() const;
  uint64_t reconnects() const;

 private:
  struct Slot {
    Link link;
    std::shared_ptr<rdma::TokenSource> conn;  // guarded by mu_
    uint64_t generation = 0;                  // guarded by mu_
    std::chrono::steady_clock::time_point next_try;
    std::chrono::milliseconds pause{0};
    bool logged_failure = false;
  };
  void Run();
  // One pass: finds ended links and remakes those whose pause is over.
  // Returns when the next pass is due.
  std::chrono::steady_clock::time_point Pass();

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Slot> slots_;
  bool stop_ = false;        // guarded by mu_
  uint64_t reconnects_ = 0;  // guarded by mu_
  std::thread thread_;
};

}  // namespace s3rdmafs::fetch
