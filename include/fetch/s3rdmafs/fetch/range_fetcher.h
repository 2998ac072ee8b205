// RangeFetcher: "fill these cache blocks with this byte range of this object
// version". The one seam between the cache and a transport: HTTP (libcurl
// writes the body into the blocks) and, in the RDMA issue, RDMA-S3 (the server
// RDMA-writes into the registered blocks). Callers never downcast to reach a
// transport; a fallback chain is itself a RangeFetcher.
// Thread-safety: Fetch may be called from any thread; `done` runs on the
// transport's completion thread and must not block.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::fetch {

struct FetchJob {
  std::string key;
  std::string etag;  // bytes must belong to this version (If-Match)
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<std::span<std::byte>> into;  // cache blocks, in order, summing to length
};

class RangeFetcher {
 public:
  virtual ~RangeFetcher() = default;
  virtual void Fetch(FetchJob job, std::function<void(Result<uint64_t>)> done) = 0;
  virtual const char* name() const = 0;
};

// Plain HTTP(S) ranged GETs through an ObjectStore.
std::unique_ptr<RangeFetcher> MakeHttpRangeFetcher(s3::ObjectStore* store);

}  // namespace s3rdmafs::fetch
