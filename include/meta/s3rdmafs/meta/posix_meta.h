// POSIX attributes kept in object metadata, in the headers s3fs uses, so a
// bucket written by either tool reads the same through the other:
//   x-amz-meta-mode   decimal st_mode, type bits included (S_IFREG|0644 = 33188)
//   x-amz-meta-uid, x-amz-meta-gid   decimal ids
//   x-amz-meta-mtime, -ctime, -atime  seconds since the epoch, "sec" or "sec.nanoseconds"
// A symlink is an object whose mode says S_IFLNK and whose body is the target.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>

#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::meta {

struct PosixMeta {
  uint32_t mode = 0;  // 0: not stored (use the mount's default)
  std::optional<uint32_t> uid, gid;
  int64_t mtime_ns = 0;  // 0: not stored (use Last-Modified)
  int64_t ctime_ns = 0;  // 0: not stored (use mtime)
  int64_t atime_ns = 0;  // 0: not stored (use mtime); set by utimensat only, never by reads
  uint64_t rdev = 0;     // character and block devices (s3fs keeps none: 0)
  bool operator==(const PosixMeta&) const = default;
};

PosixMeta ParsePosixMeta(const s3::Metadata& meta);
// Writes the set fields of `p` into `meta` (other entries are kept).
void StorePosixMeta(const PosixMeta& p, s3::Metadata* meta);

}  // namespace s3rdmafs::meta
