// FUSE low-level operations, split by op family (internal to the adapter).
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <atomic>

#include "s3rdmafs/fs/filesystem.h"
#include "s3rdmafs/fuse/fuse_mount.h"

namespace s3rdmafs::fuse {

inline fs::Filesystem* Fs(fuse_req_t req) {
  return static_cast<fs::Filesystem*>(fuse_req_userdata(req));
}
struct stat ToStat(const fs::Attributes& a);
void ReplyError(fuse_req_t req, const Error& error, const char* op);

void AddMetaOps(fuse_lowlevel_ops* ops);  // init, lookup, forget, getattr, statfs
void AddFileOps(fuse_lowlevel_ops* ops);  // open, read, release
// Reads whose reply has not been sent yet (replied from completion threads).
std::atomic<int64_t>& InFlightReads();
void AddDirOps(fuse_lowlevel_ops* ops);    // opendir, readdir, readdirplus, releasedir
void AddWriteOps(fuse_lowlevel_ops* ops);  // create, write, flush, fsync, setattr
// mkdir, rmdir, unlink, rename, symlink, readlink, link, mknod
void AddNamespaceOps(fuse_lowlevel_ops* ops);
void ReplyEntry(fuse_req_t req, const fs::Entry& entry);
// The request's uid/gid and thread group (FUSE gives the thread id).
fs::Caller CallerOf(fuse_req_t req);

}  // namespace s3rdmafs::fuse
