// The server end of the RC data path (docs/PROTOCOL.md): an rdma_cm listener,
// the connection table, and RDMA WRITEs of object bytes into client windows
// from a registered staging buffer per connection.
// Thread-safety: all methods may be called concurrently. Each request holds
// one of a connection's 8 registered 1 MiB staging slots, which bounds the
// RDMA memory and the work requests in flight per connection.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/protocol/handshake.h"
#include "s3rdmafs/protocol/token.h"

struct rdma_cm_id;
struct rdma_event_channel;
struct ibv_pd;
struct ibv_mr;
struct ibv_cq;

namespace s3rdma::server {

using s3rdmafs::Result;

class RdmaEndpoint {
 public:
  // `addr` must be an address of an RDMA device (a RoCE netdev's IP).
  static Result<std::unique_ptr<RdmaEndpoint>> Listen(const std::string& addr, uint16_t port);
  ~RdmaEndpoint();

  // HTTP handshake: a pending connection for `principal` (the access key that
  // signed the request) limited to the regions in `body`.
  Result<s3rdmafs::rdma::Handshake> Prepare(const std::string& principal, const std::string& body);

  // RDMA-WRITEs `length` bytes of `fd` from `offset` into the token's window.
  // Errors: kNotFound (no such live connection: decline), kAccessDenied (another
  // principal's connection), kInvalidArgument (window outside the registered
  // region, or too small), kConnection (the transfer failed).
  Result<uint64_t> WriteFromFile(const std::string& principal, const s3rdmafs::rdma::RcToken& token,
                                 int fd, uint64_t offset, uint64_t length);

  // RDMA-READs the token's whole window (the object's bytes for a PUT) and
  // hands it to `sink` in staging-buffer chunks; same errors as WriteFromFile.
  Result<uint64_t> ReadToSink(const std::string& principal, const s3rdmafs::rdma::RcToken& token,
                              const std::function<bool(const char*, size_t)>& sink);

  class Slot;
  struct Connection;
  // A token's window used as a stream (the gateway: bytes from or to an
  // upstream as they arrive). Holds one staging slot of its connection.
  class Stream {
   public:
    ~Stream();
    // Appends to the window; each full staging slot goes out by RDMA WRITE.
    Result<void> Write(const char* data, size_t n);
    // Writes what is staged; returns the bytes written in all. Every WRITE
    // has completed when it returns: the HTTP reply after it is the fence.
    Result<uint64_t> Flush();
    // The window's next bytes, RDMA READ a staging slot at a time; 0 at its end.
    Result<size_t> Read(char* into, size_t cap);
    uint64_t window() const { return token_.size; }

   private:
    friend class RdmaEndpoint;
    Stream() = default;
    RdmaEndpoint* ep_ = nullptr;
    std::shared_ptr<Connection> c_;
    std::unique_ptr<Slot> slot_;
    s3rdmafs::rdma::RcToken token_;
    uint64_t staged_ = 0;  // bytes in the slot not yet written (or read, not yet handed out)
    uint64_t taken_ = 0;   // of those read, handed out
    uint64_t done_ = 0;    // window bytes moved by RDMA
  };
  // Same errors as WriteFromFile.
  Result<std::unique_ptr<Stream>> OpenStream(const std::string& principal,
                                             const s3rdmafs::rdma::RcToken& token);
  // Connections bound to a client (for the metrics).
  uint64_t established() const;

 private:
  RdmaEndpoint() = default;
  void EventLoop();
  std::shared_ptr<Connection> Find(uint64_t id);
  // Checks the token against its connection; returns the connection.
  Result<std::shared_ptr<Connection>> Authorize(const std::string& principal,
                                                const s3rdmafs::rdma::RcToken& token);
  // Posts one RDMA operation from `slot`'s staging buffer and waits for its completion.
  Result<void> PostAndWait(Connection& c, const Slot& slot, int opcode, uint64_t remote,
                           uint32_t rkey, uint32_t length);

  rdma_event_channel* channel_ = nullptr;
  rdma_cm_id* listen_id_ = nullptr;
  ibv_pd* pd_ = nullptr;
  std::thread events_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Connection>> connections_;  // guarded by mu_
};

}  // namespace s3rdma::server
