// The server end of the RC data path (docs/PROTOCOL.md): an rdma_cm listener,
// the connection table, and RDMA WRITEs of object bytes into client windows
// (and READs out of them) through registered staging memory per connection.
// Thread-safety: all methods may be called concurrently. Each request holds
// one of a connection's `requests_per_connection` staging slots, which bounds
// the RDMA memory and the work requests in flight per connection. A slot has
// two halves: while one half is on the wire the next is filled (from the
// file, or by the next RDMA READ), so a request's transfer is pipelined.
// Completions arrive through a completion channel read by one thread per
// connection; every wait has a deadline.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
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
  struct Options {
    uint64_t staging_per_request = 2ull << 20;  // two halves of 1 MiB: one RDMA op each
    uint32_t requests_per_connection = 8;
    std::chrono::milliseconds op_timeout{30000};    // one RDMA operation
    std::chrono::milliseconds slot_timeout{30000};  // waiting for a free slot
  };
  // `addr` must be an address of an RDMA device (a RoCE netdev's IP).
  static Result<std::unique_ptr<RdmaEndpoint>> Listen(const std::string& addr, uint16_t port,
                                                      Options options);
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
  friend class Slot;
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
    // Waits out every operation still on the wire (after an error, before the
    // reply: no WRITE may land after it). One that fails closes the connection.
    void Drain();
    uint64_t window() const { return token_.size; }

   private:
    friend class RdmaEndpoint;
    Stream() = default;
    Result<void> PostCurrent();
    Result<void> ReadAhead(int h);
    RdmaEndpoint* ep_ = nullptr;
    std::shared_ptr<Connection> c_;
    std::unique_ptr<Slot> slot_;
    s3rdmafs::rdma::RcToken token_;
    // Writing: bytes staged in half `cur_`; a full half goes out and the
    // other becomes current. Reading: half `cur_` is being handed out, the
    // other is being read ahead.
    int cur_ = 0;
    bool inflight_[2] = {false, false};
    uint64_t filled_[2] = {0, 0};  // bytes in each half
    uint64_t taken_ = 0;           // reading: of half cur_, handed out
    uint64_t posted_ = 0;          // window bytes handed to RDMA operations
    bool started_ = false;         // reading: the first READs are posted
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
  // Posts one signalled RDMA operation on half `half` of `slot`.
  Result<void> Post(Connection& c, const Slot& slot, int half, int opcode, uint64_t remote,
                    uint32_t rkey, uint32_t length);
  // Waits (op_timeout) for that operation's completion.
  Result<void> Wait(Connection& c, const Slot& slot, int half);
  // Waits out the operations in flight on half `half` (-1: both), clearing
  // their flags. On a failure (which closes the connection) the other half
  // is waited out too, so nothing of the request is left on the wire.
  Result<void> Settle(Connection& c, const Slot& slot, bool (&inflight)[2], int half = -1);
  // After a failure with operations outstanding: the connection is closed
  // (its QP goes to error, so nothing more moves) and they are waited out,
  // so no late transfer follows the error reply.
  void Abandon(Connection& c, const Slot& slot, bool (&inflight)[2]);
  void CompletionLoop(Connection* c);

  Options options_;

  rdma_event_channel* channel_ = nullptr;
  rdma_cm_id* listen_id_ = nullptr;
  ibv_pd* pd_ = nullptr;
  std::thread events_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Connection>> connections_;  // guarded by mu_
};

}  // namespace s3rdma::server
