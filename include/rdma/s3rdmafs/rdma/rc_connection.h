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

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/protocol/handshake.h"
#include "s3rdmafs/protocol/token.h"
#include "s3rdmafs/rdma/token_source.h"

struct rdma_cm_id;
struct rdma_event_channel;
struct ibv_pd;
struct ibv_mr;
struct ibv_cq;

namespace s3rdmafs::rdma {

// Sends the handshake body over signed HTTP and parses the answer.
using HandshakeFn = std::function<Result<Handshake>(const std::string& body)>;

class RcConnection final : public TokenSource {
 public:
  // `region` is registered for remote read and write on the routed device.
  static Result<std::unique_ptr<RcConnection>> Connect(const std::string& host, uint16_t port,
                                                       void* region, uint64_t region_size,
                                                       const HandshakeFn& handshake,
                                                       int timeout_ms = 5000);
  ~RcConnection() override;

  uint64_t id() const { return connection_; }
  uint32_t rkey() const;
  std::string device() const;
  // The token naming [addr, addr + size) inside the registered region.
  Result<RcToken> Token(const void* addr, uint64_t size) const;

  // Quarantine by teardown: after a request that got no reply, a late RDMA
  // WRITE could still land in its window. Deregistering the region retires
  // the rkey, so such a write fails at the server instead of corrupting a
  // reused cache block. Idempotent; Token() fails afterwards.
  void Retire() override;
  bool retired() const override { return retired_.load(); }
  // Reads the connection's rdma_cm events without waiting: a DISCONNECTED
  // (the server went away or restarted) or a device removal ends it.
  bool Healthy() override;
  Result<std::string> TokenFor(const void* addr, uint64_t size) const override;
  std::string Describe() const override;

 private:
  RcConnection() = default;
  rdma_event_channel* channel_ = nullptr;
  rdma_cm_id* id_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_mr* mr_ = nullptr;
  ibv_cq* cq_ = nullptr;
  uint64_t connection_ = 0;
  uint32_t rkey_ = 0;
  std::atomic<bool> retired_{false};
  bool disconnected_ = false;  // guarded by retire_mu_
  std::mutex retire_mu_;
  uintptr_t base_ = 0;
  uint64_t size_ = 0;
};

}  // namespace s3rdmafs::rdma
