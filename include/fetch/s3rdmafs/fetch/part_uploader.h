// PartUploader: "store this span of registered memory as an object, or as
// part N of a multipart upload". The write path's one seam to a transport,
// the mirror of RangeFetcher: plain HTTP sends the span as the request body;
// RDMA-S3 names it in an x-amz-rdma-token and the server RDMA-READs it, with
// HTTP as the fallback. The span must stay untouched until `done` runs.
// Thread-safety: Upload may be called from any thread; `done` runs on the
// transport's completion thread and must not block.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::fetch {

struct UploadJob {
  std::string key;
  std::span<const std::byte> data;
  s3::FileRegion file;           // instead of `data`, where !needs_registered_memory()
  s3::Metadata meta;             // PutObject only
  s3::WriteCondition condition;  // PutObject only
  std::string upload_id;         // set: UploadPart `part_number`
  uint32_t part_number = 0;
};

class PartUploader {
 public:
  virtual ~PartUploader() = default;
  // Yields the ETag of the new object or part.
  virtual void Upload(UploadJob job, std::function<void(Result<std::string>)> done) = 0;
  virtual const char* name() const = 0;
  // True when spans must lie in the registered arena (RDMA names them in a
  // token); else any memory will do, and a file region too (HTTP reads it
  // as it sends).
  virtual bool needs_registered_memory() const { return false; }
};

std::unique_ptr<PartUploader> MakeHttpPartUploader(s3::ObjectStore* store);

}  // namespace s3rdmafs::fetch
