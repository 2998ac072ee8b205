// What the RDMA data path needs from a transport: a window of registered
// memory for one request, named by a token, and a way to make that window
// unusable again once the request is over (its reply came) or abandoned (no
// reply came: the server may still act on the token). Implemented by
// RcConnection (our RC protocol: a type 2 memory window per request, bound to
// exactly its bytes) and DcTarget (the DC form of the commercial servers: the
// region's own key, so a window cannot be closed alone).
// Thread-safety: implementations are safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::rdma {

// What the server may do to a window: write it (a GET lands there) or read
// it (a PUT's bytes). A window grants that and nothing else, where the
// transport binds windows.
enum class Access { kServerWrites, kServerReads };

// One request's window.
struct Window {
  std::string token;
  uint64_t id = 0;  // 0: the token names the whole region; nothing to close
};

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // A window over [addr, addr + size) of the registered region.
  virtual Result<Window> Open(const void* addr, uint64_t size, Access access) = 0;
  // Makes the window unusable. True: no RDMA operation of the server reaches
  // its memory from now on (so it may be reused). False: that cannot be made
  // sure for this window alone (a region-wide key, or the invalidation
  // failed): the caller must Retire() the connection before reusing it.
  virtual bool Close(const Window& window) = 0;
  // Ends the connection's registration, so no late transfer reaches memory
  // about to be reused. Idempotent; Open fails afterwards.
  virtual void Retire() = 0;
  virtual bool retired() const = 0;
  // False once the transport is gone for good: retired, or (RC) the peer
  // disconnected. Cheap and non-blocking: the reconnect thread polls it.
  virtual bool Healthy() { return !retired(); }
  virtual std::string Describe() const = 0;
};

}  // namespace s3rdmafs::rdma
