// RdmaStore: the RDMA-S3 requests (docs/PROTOCOL.md), the one seam between
// the RDMA fetcher/uploader and whatever speaks to the server. S3Client is
// the real one (signed HTTP carrying x-amz-rdma-token); tests use a fake
// that answers each request the way a real server would (RDMA done, a
// decline, a body served over HTTP, a lost reply), on another thread.
//
// Calls are asynchronous: `done` runs on the implementation's I/O thread and
// must not block. An error with http_status 0 means no reply came: the
// server may still act on the token, so its window must be made unusable
// before the memory is touched again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::s3 {

struct RdmaReply {
  // The server answered 501, ignored the token (no x-amz-rdma-reply) or
  // refused it as a bad request: retry over HTTP.
  bool declined = false;
  std::string why;
  uint64_t bytes = 0;
  std::string etag;
  bool connection_unknown = false;  // declined: the server does not know the token's connection
  // Declined, but the bytes came anyway as the HTTP body, into the window
  // (Ceph RGW when it does not choose RDMA): nothing to fetch again.
  bool served_over_http = false;
};

class RdmaStore {
 public:
  virtual ~RdmaStore() = default;

  // Ranges of one object spread over the endpoints in pieces of this size.
  static constexpr uint64_t kSpreadBytes = 8ull << 20;
  // The endpoint a request for these bytes goes to now (a token names memory
  // registered with one endpoint's connection, so the RDMA request must go
  // there too).
  virtual size_t EndpointFor(std::string_view key, uint64_t offset) const = 0;

  // A ranged GET of window.size() bytes at `offset` with the token naming
  // `window`: the bytes land there by RDMA WRITE or, from a server that
  // ignored the token, as the HTTP body.
  virtual void GetRdmaAsync(const std::string& key, uint64_t offset, std::span<std::byte> window,
                            const std::string& if_match, const std::string& token,
                            std::function<void(Result<RdmaReply>)> done, size_t endpoint) = 0;
  // PUT or UploadPart (request.upload_id set) whose body the server
  // RDMA-READs from the token's window; request.body is ignored. `crc32c`
  // (base64, big-endian) lets the server verify what it read.
  virtual void PutRdmaAsync(const PutRequest& request, const std::string& token,
                            const std::string& crc32c, std::function<void(Result<RdmaReply>)> done,
                            size_t endpoint) = 0;
};

}  // namespace s3rdmafs::s3
