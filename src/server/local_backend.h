// The directory backend: bucket = top-level directory of the root, key = path
// below it. Objects are regular files; "a/b/" prefixes are directories. A
// directory marker object ("dir/") is a directory holding kMarkerName, or an
// empty directory. A key that is an object and a prefix at once ("a/b" beside
// "a/b/c") lives in its directory as kObjectName: a/b/.s3rdma-object. Writes
// go to a temporary file that is renamed into place, so a reader never sees
// half an object.
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "s3rdmafs/common/result.h"

namespace s3rdma::server {

using s3rdmafs::Result;

// What a client stored with an object besides its bytes: x-amz-meta-* headers
// (names lowercased) and Content-Type. Kept in the xattr user.s3rdma.meta.
using UserMeta = std::vector<std::pair<std::string, std::string>>;

// S3 conditional writes (PutObject, CompleteMultipartUpload): checked and
// published under one lock, so two conditional writers never both win.
struct WriteCondition {
  std::string if_match;        // the object must exist with this ETag (quoted or not)
  bool if_none_match = false;  // If-None-Match: * - the key must be free
  bool any() const { return if_none_match || !if_match.empty(); }
};

struct ObjectMeta {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string etag;  // quoted
  UserMeta user;     // filled by Open/Stat (not by List)
};

struct ListEntry {
  std::string key;
  bool is_prefix = false;  // a CommonPrefix (delimiter listings)
  ObjectMeta meta;
};

struct ListQuery {
  std::string prefix;
  std::string delimiter;    // any string; "" lists flat
  std::string start_after;  // exclusive
  uint32_t max_keys = 1000;
};

struct ListOutcome {
  std::vector<ListEntry> entries;
  bool truncated = false;
};

class LocalBackend {
 public:
  static constexpr const char* kMarkerName = ".s3rdma-dir-marker";
  static constexpr const char* kTempPrefix = ".s3rdma-tmp-";
  static constexpr const char* kObjectName = ".s3rdma-object";

  explicit LocalBackend(std::string root) : root_(std::move(root)) {}

  // "" when the root keeps user xattrs (object metadata), else why not.
  std::string ProbeMetadataSupport() const;

  static bool ValidBucketName(const std::string& bucket);
  // A multipart object's parts, for GET ?partNumber=N: each one's size and
  // the x-amz-checksum value it was uploaded with ("" none).
  struct PartRecord {
    uint64_t size = 0;
    std::string checksum;
    bool operator==(const PartRecord&) const = default;
  };
  // Records them on the object's file (best effort, as the ETag xattr: an
  // xattr is at most a block, so the checksums of many parts may not fit;
  // runs of equal sizes then still do).
  static void SetParts(int fd, const std::vector<PartRecord>& parts);
  // Those parts, when their sizes still add up to `size` (else the file was
  // rewritten, or is no multipart object): empty.
  static std::vector<PartRecord> Parts(int fd, uint64_t size);
  static bool ValidKey(const std::string& key);

  struct BucketInfo {
    std::string name;
    int64_t created_ns = 0;  // kept in an xattr; else the directory's birth time
    std::string location;    // the LocationConstraint it was created with ("" = none)
    std::string acl;         // its canned ACL (acl.h); "" = private
  };
  Result<std::vector<BucketInfo>> ListBuckets() const;  // sorted by name
  Result<BucketInfo> GetBucket(const std::string& bucket) const;
  Result<void> BucketExists(const std::string& bucket) const;
  Result<void> CreateBucket(const std::string& bucket, const std::string& location = "",
                            const std::string& acl = "");
  Result<void> SetBucketAcl(const std::string& bucket, const std::string& acl);
  // An object's canned ACL lives in its metadata as x-amz-acl ("private":
  // none); set in place, as S3 changes no other metadata for it.
  Result<void> SetObjectAcl(const std::string& bucket, const std::string& key,
                            const std::string& acl);
  Result<void> DeleteBucket(const std::string& bucket);

  // Opens an object for reading; returns an fd the caller closes.
  Result<std::pair<int, ObjectMeta>> Open(const std::string& bucket, const std::string& key) const;
  Result<ObjectMeta> Stat(const std::string& bucket, const std::string& key) const;
  Result<ListOutcome> List(const std::string& bucket, const ListQuery& q);

  // Streams a new object in: `fill` is called with a writer and returns false
  // to abort (nothing is published then). `verify` runs before publishing
  // with the MD5 and SHA-256 of what was written (hex) and may veto it.
  using Writer = std::function<bool(const char*, size_t)>;
  using Verifier =
      std::function<Result<void>(const std::string& md5_hex, const std::string& sha256_hex)>;
  // `want_sha256`: the client sent a payload hash to check (else the verifier
  // gets "" for it: SHA-256 of every byte is the server's biggest CPU cost).
  Result<ObjectMeta> Put(const std::string& bucket, const std::string& key, const UserMeta& user,
                         const std::function<bool(const Writer&)>& fill, const Verifier& verify,
                         bool want_sha256 = true, const WriteCondition& condition = {});

  // The one way an object comes to be: `write` fills a temporary file (`fd`)
  // and returns the ETag (unquoted); then `user` is attached and the file is
  // renamed over the key, so readers see the old object or the new, whole.
  using FileWriter = std::function<Result<std::string>(int fd)>;
  Result<ObjectMeta> Publish(const std::string& bucket, const std::string& key,
                             const UserMeta& user, const FileWriter& write,
                             const WriteCondition& condition = {});

  // CopyObject: `admit` may refuse the source (its conditions), else says
  // what metadata the copy carries (the source's, or what the request
  // replaces it with, and the copy's own ACL).
  Result<ObjectMeta> Copy(const std::string& src_bucket, const std::string& src_key,
                          const std::function<Result<UserMeta>(const ObjectMeta&)>& admit,
                          const std::string& bucket, const std::string& key);
  Result<void> Delete(const std::string& bucket, const std::string& key);

 private:
  struct DirEntry {
    enum Kind { kFile, kDir, kDirObject } kind;  // kDirObject: the dir's kObjectName
    std::string name;
    std::string sort_key;  // S3 order: a directory sorts as "name/"
  };
  // Sorted (by S3 key order) names of one directory, cached by mtime so that
  // paging through a 100k-entry directory sorts it once.
  std::shared_ptr<const std::vector<DirEntry>> SortedDir(const std::string& path);
  bool HasMarkerOrEmpty(const std::string& dir_path) const;
  struct Lister;
  bool Walk(const std::string& dir_path, const std::string& key_prefix, Lister& lister);
  // The path an object's bytes live at: `path` itself, or path/kObjectName
  // when `path` is a directory.
  static std::string ObjectPathOf(const std::string& path);
  // Makes the object file at `path` the kObjectName of a new directory there.
  Result<void> ObjectToDirectory(const std::string& path);
  Result<void> MakeParents(const std::string& bucket_path, const std::string& path);
  std::string PathOf(const std::string& bucket, const std::string& key) const;

  std::string root_;
  // Shared by every rename into place and by readers that missed; taken
  // alone by ObjectToDirectory, whose three steps nobody may see half done.
  mutable std::shared_mutex layout_mu_;
  std::mutex dir_cache_mu_;
  struct CachedDir {
    timespec mtime;
    std::shared_ptr<const std::vector<DirEntry>> entries;
  };
  std::map<std::string, CachedDir> dir_cache_;  // guarded by dir_cache_mu_
};

ObjectMeta MetaFromStat(const struct stat& st, const std::string& path);

// Runs `fill` with a Writer that appends to `fd` and digests what passes;
// returns (md5 hex, sha256 hex or "") or the write error.
Result<std::pair<std::string, std::string>> WriteDigested(
    int fd, const std::function<bool(const LocalBackend::Writer&)>& fill, bool want_sha256 = true);
// Copies `length` bytes of `src` from `offset` to the end of `dst` (in the kernel).
Result<void> CopyRange(int src, uint64_t offset, uint64_t length, int dst);
// Maps errno to our codes (ENOENT -> kNoSuchKey, ENOSPC -> kNoSpace, ...).
s3rdmafs::Error ErrorFromErrno(int err, const std::string& what);

}  // namespace s3rdma::server
