// The client end of one RC connection to an RDMA-S3 server that speaks our RC
// token form (docs/PROTOCOL.md). Set-up, in order:
//   1. rdma_cm resolves the server's RDMA address; the memory region (the
//      cache arena) is registered on the device the route uses;
//   2. a SigV4-signed HTTP handshake (POST /?rdma-connect) tells the server
//      which regions the connection may touch and returns a connection id and
//      a one-time ticket, so only a holder of valid S3 credentials can bind;
//   3. rdma_connect carries (id, ticket) as private data; the server accepts.
// The client posts no work requests: the server RDMA-WRITEs GET data into, and
// RDMA-READs PUT data from, the windows that tokens name.
// Thread-safety: immutable once Connect returns; Token() may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/protocol/handshake.h"
#include "s3rdmafs/protocol/token.h"
#include "s3rdmafs/rdma/token_source.h"

struct rdma_cm_id;
struct rdma_event_channel;
struct ibv_pd;
struct ibv_mr;
struct ibv_cq;
struct ibv_mw;
struct ibv_send_wr;

namespace s3rdmafs::rdma {

// Sends the handshake body over signed HTTP and parses the answer.
using HandshakeFn = std::function<Result<Handshake>(const std::string& body)>;

struct RcOptions {
  int timeout_ms = 5000;
  // A type 2 memory window per request, bound to exactly its bytes and
  // invalidated when it closes: a token reaches only its own request's
  // memory, and only until then. Off, or on a device without type 2
  // windows: the region is registered for remote access and every token
  // carries its key.
  bool memory_windows = true;
};

class RcConnection final : public TokenSource {
 public:
  // `region` is registered on the routed device: for binding windows, or
  // (without them) for remote read and write.
  static Result<std::unique_ptr<RcConnection>> Connect(const std::string& host, uint16_t port,
                                                       void* region, uint64_t region_size,
                                                       const HandshakeFn& handshake,
                                                       const RcOptions& options = {});
  ~RcConnection() override;

  uint64_t id() const { return connection_; }
  std::string device() const;
  bool memory_windows() const { return windows_; }

  // With memory windows: binds a free window (a type 2 MW, allocated as
  // needed and reused) to exactly [addr, addr + size), with a fresh key,
  // and waits for the bind to complete, so the server can use the token as
  // soon as it has it. Without: the region's key.
  Result<Window> Open(const void* addr, uint64_t size, Access access) override;
  // Invalidates the window (LOCAL_INV of its key, completion awaited with a
  // deadline): a replayed or late token fails at the server from then on.
  bool Close(const Window& window) override;
  // The token of an open window, parsed (tests).
  static Result<RcToken> TokenOf(const Window& window);

  // Quarantine by teardown: the QP goes to error (rdma_disconnect) and, with
  // no window bound, the region is deregistered; no late RDMA operation
  // reaches our memory. Idempotent; Open() fails afterwards.
  void Retire() override;
  bool retired() const override { return retired_.load(); }
  // Reads the connection's rdma_cm events without waiting: a DISCONNECTED
  // (the server went away or restarted) or a device removal ends it.
  bool Healthy() override;
  std::string Describe() const override;

 private:
  RcConnection() = default;
  // Posts one signalled local operation (bind or invalidate) and waits for
  // its completion, deadline included. Callers hold ops_mu_.
  Result<void> RunLocal(ibv_send_wr& wr);
  struct BoundWindow {
    ibv_mw* mw = nullptr;
    uint32_t rkey = 0;  // the key bound now (ibv_inc_rkey of the last one)
  };
  rdma_event_channel* channel_ = nullptr;
  rdma_cm_id* id_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_mr* mr_ = nullptr;
  ibv_cq* cq_ = nullptr;
  uint64_t connection_ = 0;
  uint32_t rkey_ = 0;  // the region's key (no windows), or 0
  bool windows_ = false;
  std::mutex ops_mu_;                                // one local operation on the QP at a time
  std::vector<ibv_mw*> free_windows_;                // guarded by ops_mu_
  std::unordered_map<uint64_t, BoundWindow> bound_;  // by Window::id; guarded by ops_mu_
  uint64_t next_window_ = 1;                         // guarded by ops_mu_
  std::vector<ibv_mw*> all_windows_;                 // guarded by ops_mu_
  uint64_t next_op_ = 0;                             // guarded by ops_mu_
  std::atomic<bool> broken_{false};                  // a local operation failed: remake it
  std::atomic<bool> retired_{false};
  bool disconnected_ = false;  // guarded by retire_mu_
  std::mutex retire_mu_;
  uintptr_t base_ = 0;
  uint64_t size_ = 0;
};

}  // namespace s3rdmafs::rdma
