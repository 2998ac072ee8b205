// A directory's attribute record: the POSIX attributes (and symlink targets)
// of the files in one directory, kept by the mounts that write them in one
// small object, so that a listing (`ls -l`) costs the LIST pages and one GET
// instead of a HEAD per file. LIST returns no x-amz-meta-*.
//
// An entry is trusted only for the object version it names: its ETag and
// size must equal what the listing says, so a file another tool rewrote
// falls back to the listing's attributes until its own HEAD. The record is a
// cache of the objects' metadata, never the truth: losing it costs requests,
// not data.
//
// Text, one entry per line after a header, fields separated by tabs:
//   s3rdmafs-dir-record 1
//   name  etag  size  mode  uid  gid  mtime_ns  ctime_ns  rdev  link_target  atime_ns
// (atime_ns came later: a line without it reads as atime_ns 0, not stored).
// Names and targets are %-escaped ('%', tab, newline, carriage return and
// other control bytes); an absent uid or gid is "-". Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/meta/posix_meta.h"

namespace s3rdmafs::meta {

struct RecordEntry {
  std::string etag;  // bare (no quotes)
  uint64_t size = 0;
  PosixMeta posix;
  std::string link_target;  // symlinks: their target (the object's body)
  bool operator==(const RecordEntry&) const = default;
};

using DirRecord = std::map<std::string, RecordEntry, std::less<>>;

std::string EncodeDirRecord(const DirRecord& record);
// A clear error naming the line and field for anything malformed.
Result<DirRecord> DecodeDirRecord(std::string_view text);

}  // namespace s3rdmafs::meta
