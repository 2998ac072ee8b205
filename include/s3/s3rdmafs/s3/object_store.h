// ObjectStore: the one interface to an S3-compatible service. The real
// implementation is S3Client (HTTP via libcurl); tests use an in-memory fake
// and failure-injecting decorators.
//
// Calls are asynchronous: the callback runs on the implementation's I/O thread
// and must not block. The synchronous helpers wait on a caller's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/body_stream.h"
#include "s3rdmafs/s3/file_region.h"

namespace s3rdmafs::s3 {

// User metadata: x-amz-meta-<name> headers, names lowercased without the prefix.
// x-amz-meta-<name> -> value, without the prefix. A key ":<header>" is a
// standard header the object keeps (Content-Type, Cache-Control, ...):
// HEAD fills them in, PUT, CreateUpload and a REPLACE copy send them.
using Metadata = std::map<std::string, std::string>;

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string etag;       // as the server sent it, quotes included
  Metadata meta;          // HEAD only; LIST does not carry it
  bool has_meta = false;  // true when meta came from a HEAD (even if empty)
};

struct ListRequest {
  std::string prefix;
  std::string delimiter;
  std::string continuation_token;
  uint32_t max_keys = 1000;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  std::string next_token;  // empty when not truncated
};

// A ranged GET written straight into caller memory (cache blocks). The spans
// are filled in order; the server must send exactly `length` bytes.
struct GetRequest {
  std::string key;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string if_match;  // ETag the bytes must belong to ("" = any)
  std::vector<std::span<std::byte>> into;
};

struct GetResult {
  uint64_t bytes = 0;
  std::string etag;
};

// A PUT or UploadPart body sent from caller memory (kept alive until `done`).
// S3 conditional writes (PutObject, CompleteMultipartUpload); a failed
// condition is kPreconditionFailed (412) and changes nothing.
struct WriteCondition {
  std::string if_match;        // the object must still have this ETag
  bool if_none_match = false;  // If-None-Match: * - the key must not exist
};

struct PutRequest {
  std::string key;
  std::vector<std::span<const std::byte>> body;
  FileRegion body_file;   // instead of `body`: read from the file as it is sent
  Metadata meta;          // PutObject only
  std::string upload_id;  // set: UploadPart `part_number` of this upload
  uint32_t part_number = 0;
  WriteCondition condition;  // PutObject only
};

// UploadPartCopy: bytes [offset, offset+length) of `source_key` as one part.
struct CopyPartRequest {
  std::string key, upload_id;
  uint32_t part_number = 0;
  std::string source_key, source_if_match;
  uint64_t offset = 0, length = 0;
};

struct CompletedPart {
  uint32_t number = 0;
  std::string etag;
};

// An ETag without its quotes: how ETags are compared, and how write
// conditions send them (Ceph RGW 16 matches If-Match against the bare form).
std::string BareEtag(std::string_view etag);

// S3's ETag of a completed multipart upload, unquoted: the MD5 of the parts'
// binary MD5s, then "-<count>". Empty when a part's ETag is not a plain MD5.
std::string MultipartEtag(const std::vector<CompletedPart>& parts);

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual void HeadAsync(const std::string& key, std::function<void(Result<ObjectInfo>)> done) = 0;
  // What a HEAD says, and the object's first bytes in the same request (a
  // GET of bytes 0..into.size()-1): for small files one request brings
  // attributes and data. `bytes` is how many landed in `into` (the whole
  // object when bytes == info.size). The object must not be empty (S3
  // answers a range of an empty object with 416).
  struct HeadWithBody {
    ObjectInfo info;
    uint64_t bytes = 0;
  };
  virtual void HeadWithBodyAsync(const std::string& key, std::span<std::byte> into,
                                 std::function<void(Result<HeadWithBody>)> done) = 0;
  virtual void ListAsync(const ListRequest& request,
                         std::function<void(Result<ListPage>)> done) = 0;
  virtual void GetAsync(GetRequest request, std::function<void(Result<GetResult>)> done) = 0;

  // Writes. Every one returns the new ETag (of the object or the part).
  virtual void PutAsync(PutRequest request, std::function<void(Result<std::string>)> done) = 0;
  virtual void CreateUploadAsync(
      const std::string& key, const Metadata& meta,
      std::function<void(Result<std::string>)> done) = 0;  // -> upload id
  virtual void CopyPartAsync(const CopyPartRequest& request,
                             std::function<void(Result<std::string>)> done) = 0;
  virtual void CompleteUploadAsync(const std::string& key, const std::string& upload_id,
                                   const std::vector<CompletedPart>& parts,
                                   const WriteCondition& condition,
                                   std::function<void(Result<std::string>)> done) = 0;
  virtual void AbortUploadAsync(const std::string& key, const std::string& upload_id,
                                std::function<void(Result<void>)> done) = 0;
  // CopyObject; `replace` set = REPLACE the metadata with it, else COPY it.
  virtual void CopyAsync(const std::string& source_key, const std::string& source_if_match,
                         const std::string& key, const Metadata* replace,
                         std::function<void(Result<std::string>)> done) = 0;
  virtual void DeleteAsync(const std::string& key, std::function<void(Result<void>)> done) = 0;

  // A GET of bytes [offset, offset + length) whose body stays in its socket
  // for a reader that takes it by splice(2) (body_stream.h), counted as a GET.
  // Blocking. Stores that have none (TLS, fakes) answer kNotSupported.
  virtual Result<std::unique_ptr<BodyStream>> OpenBodyStream(const std::string& key,
                                                             uint64_t offset, uint64_t length,
                                                             const std::string& if_match,
                                                             BodyStream::Clock::time_point deadline,
                                                             const std::function<bool()>& abandon);

  // Blocking helpers for callers that may wait (FUSE worker threads, startup).
  Result<ObjectInfo> Head(const std::string& key);
  Result<HeadWithBody> HeadWithBodyOf(const std::string& key, std::span<std::byte> into);
  Result<ListPage> List(const ListRequest& request);
  Result<GetResult> Get(GetRequest request);
  Result<std::string> Put(PutRequest request);
  Result<std::string> CreateUpload(const std::string& key, const Metadata& meta);
  Result<std::string> CopyPart(const CopyPartRequest& request);
  Result<std::string> CompleteUpload(const std::string& key, const std::string& upload_id,
                                     const std::vector<CompletedPart>& parts,
                                     const WriteCondition& condition = {});
  Result<void> AbortUpload(const std::string& key, const std::string& upload_id);
  Result<std::string> Copy(const std::string& source_key, const std::string& source_if_match,
                           const std::string& key, const Metadata* replace);
  Result<void> Delete(const std::string& key);
};

}  // namespace s3rdmafs::s3
