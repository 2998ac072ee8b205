// Multipart uploads on the directory backend. An upload is a directory
// <root>/.s3rdma-multipart/<id>/ (hidden from ListBuckets: not a valid bucket
// name) holding the target and metadata ("upload") and one file per part.
// Complete concatenates the parts in the kernel (copy_file_range) into a
// temporary file that LocalBackend::Publish renames over the key, so the
// object appears whole or not at all; until then no reader sees any of it.
// Thread-safety: all methods may be called concurrently; racing uploads of
// one part number are the client's business (last rename wins, as on S3).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checksums.h"
#include "local_backend.h"

namespace s3rdma::server {

// An x-amz-checksum-* value and its algorithm ("crc32", ...); empty: none.
struct PartChecksum {
  std::string algorithm, value;
};

struct PartInfo {
  uint32_t number = 0;
  std::string etag;  // quoted
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  PartChecksum checksum;  // what it was uploaded with
};

// A part as CompleteMultipartUpload names it.
struct CompletedPart {
  uint32_t number = 0;
  std::string etag;
  PartChecksum checksum;  // its Checksum<ALG> element, if any
};

// Checks an uploaded part's body (MD5 and SHA-256 hex) and answers the
// checksum to keep with it.
using PartVerifier =
    std::function<Result<PartChecksum>(const std::string& md5_hex, const std::string& sha_hex)>;

class MultipartUploads {
 public:
  static constexpr uint64_t kMinPartSize = 5ull << 20;  // S3's rule for all parts but the last
  static constexpr uint32_t kMaxParts = 10000;

  MultipartUploads(LocalBackend* backend, const std::string& root);

  Result<std::string> Create(const std::string& bucket, const std::string& key,
                             const UserMeta& user,
                             const std::optional<UploadChecksum>& checksum = std::nullopt);
  // The checksum the upload was created with; NoSuchUpload for no such upload.
  Result<std::optional<UploadChecksum>> ChecksumOf(const std::string& bucket,
                                                   const std::string& key,
                                                   const std::string& id) const;
  Result<PartInfo> UploadPart(const std::string& bucket, const std::string& key,
                              const std::string& id, uint32_t number,
                              const std::function<bool(const LocalBackend::Writer&)>& fill,
                              const PartVerifier& verify, bool want_sha256 = true);
  // UploadPartCopy: bytes [offset, offset+length) of an open source object,
  // with the upload's checksum computed as they are read back.
  Result<PartInfo> CopyPart(const std::string& bucket, const std::string& key,
                            const std::string& id, uint32_t number, int src_fd, uint64_t offset,
                            uint64_t length);
  // `parts` in the client's order; must ascend. For an upload with a
  // checksum, each part's named checksum must be the one it was uploaded
  // with, `claimed` (the request's x-amz-checksum-* and -type) must be the
  // object's, and the object keeps it (x-amz-checksum-<alg>, -type). Errors
  // carry S3's codes: InvalidPart, InvalidPartOrder, EntityTooSmall,
  // BadDigest, InvalidRequest.
  struct Claim {
    PartChecksum checksum;
    std::string type;  // "" = not named
  };
  Result<ObjectMeta> Complete(const std::string& bucket, const std::string& key,
                              const std::string& id, const std::vector<CompletedPart>& parts,
                              const WriteCondition& condition = {}, const Claim& claimed = {});
  Result<void> Abort(const std::string& bucket, const std::string& key, const std::string& id);
  Result<std::vector<PartInfo>> ListParts(const std::string& bucket, const std::string& key,
                                          const std::string& id);

  struct UploadInfo {
    std::string key, id;
    int64_t initiated_ns = 0;
  };
  // The bucket's open uploads whose keys start with `prefix`, by key, then
  // by start time; (key, id) markers page through them.
  Result<std::vector<UploadInfo>> List(const std::string& bucket, const std::string& prefix) const;

  // The record a completed upload leaves behind so that a retried Complete
  // (its reply was lost) is answered 200 with the same ETag, as S3 answers.
  // Records older than an hour go at start-up and when uploads are listed.
  static constexpr int64_t kCompletedRecordSeconds = 3600;

 private:
  // The upload's directory when `id` names an upload of bucket/key; else NoSuchUpload.
  Result<std::string> DirOf(const std::string& bucket, const std::string& key,
                            const std::string& id) const;
  // `write` fills the part's file and answers its ETag and checksum.
  Result<PartInfo> StorePart(
      const std::string& dir, uint32_t number,
      const std::function<Result<std::pair<std::string, PartChecksum>>(int fd)>& write);
  Result<std::optional<UploadChecksum>> ChecksumIn(const std::string& dir) const;
  Result<PartInfo> ReadPart(const std::string& dir, uint32_t number) const;

  void DropOldRecords() const;

  LocalBackend* backend_;
  std::string dir_;
};

}  // namespace s3rdma::server
