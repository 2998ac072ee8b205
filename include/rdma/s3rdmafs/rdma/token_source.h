// What the RDMA fetch path needs from a transport: a token naming a window of
// the registered cache arena, and a way to retire the registration after a
// request that got no reply (so a late RDMA write cannot land in reused
// memory), and whether it still works. Implemented by RcConnection (our RC protocol) and DcTarget
// (the DC form of the commercial servers). Thread-safety: implementations are safe to call from any
// thread.
#pragma once

#include <cstdint>
#include <string>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::rdma {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual Result<std::string> TokenFor(const void* addr, uint64_t size) const = 0;
  virtual void Retire() = 0;
  virtual bool retired() const = 0;
  // False once the transport is gone for good: retired, or (RC) the peer
  // disconnected. Cheap and non-blocking: the reconnect thread polls it.
  virtual bool Healthy() { return !retired(); }
  virtual std::string Describe() const = 0;
};

}  // namespace s3rdmafs::rdma
