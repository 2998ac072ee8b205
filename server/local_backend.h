// The directory backend: bucket = top-level directory of the root, key = path
// below it. Objects are regular files; "a/b/" prefixes are directories. A
// directory marker object ("dir/") is a directory holding kMarkerName, or an
// empty directory. Writes go to a temporary file that is renamed into place,
// so a reader never sees half an object.
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "s3rdmafs/common/result.h"

namespace s3rdma::server {

using s3rdmafs::Result;

struct ObjectMeta {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string etag;  // quoted
};

struct ListEntry {
  std::string key;
  bool is_prefix = false;  // a CommonPrefix (delimiter listings)
  ObjectMeta meta;
};

struct ListQuery {
  std::string prefix;
  std::string delimiter;    // "" or "/" (others are answered as if "")
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

  explicit LocalBackend(std::string root) : root_(std::move(root)) {}

  static bool ValidBucketName(const std::string& bucket);
  static bool ValidKey(const std::string& key);

  Result<std::vector<std::string>> ListBuckets() const;
  Result<void> BucketExists(const std::string& bucket) const;
  Result<void> CreateBucket(const std::string& bucket);
  Result<void> DeleteBucket(const std::string& bucket);

  // Opens an object for reading; returns an fd the caller closes.
  Result<std::pair<int, ObjectMeta>> Open(const std::string& bucket, const std::string& key) const;
  Result<ObjectMeta> Stat(const std::string& bucket, const std::string& key) const;
  Result<ListOutcome> List(const std::string& bucket, const ListQuery& q);

  // Streams a new object in: `fill` is called with a writer and returns false
  // to abort (nothing is published then). `verify` runs before publishing
  // with the MD5 and SHA-256 of what was written (hex) and may veto it.
  using Writer = std::function<bool(const char*, size_t)>;
  Result<ObjectMeta> Put(const std::string& bucket, const std::string& key,
                         const std::function<bool(const Writer&)>& fill,
                         const std::function<Result<void>(const std::string& md5_hex,
                                                          const std::string& sha256_hex)>& verify);
  Result<void> Delete(const std::string& bucket, const std::string& key);

 private:
  struct DirEntry {
    std::string name;
    bool is_dir;
  };
  // Sorted (by S3 key order) names of one directory, cached by mtime so that
  // paging through a 100k-entry directory sorts it once.
  std::shared_ptr<const std::vector<DirEntry>> SortedDir(const std::string& path);
  bool HasMarkerOrEmpty(const std::string& dir_path) const;
  bool Walk(const std::string& dir_path, const std::string& key_prefix, const ListQuery& q,
            bool recursive, ListOutcome* out);
  std::string PathOf(const std::string& bucket, const std::string& key) const;

  std::string root_;
  std::mutex dir_cache_mu_;
  struct CachedDir {
    timespec mtime;
    std::shared_ptr<const std::vector<DirEntry>> entries;
  };
  std::map<std::string, CachedDir> dir_cache_;  // guarded by dir_cache_mu_
};

ObjectMeta MetaFromStat(const struct stat& st, const std::string& path);

}  // namespace s3rdma::server
