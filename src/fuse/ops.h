// FUSE low-level operations, split by op family (internal to the adapter).
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "s3rdmafs/fs/filesystem.h"
#include "s3rdmafs/fuse/fuse_mount.h"

namespace s3rdmafs::fuse {

// Reads in flight that a FUSE INTERRUPT (the reader was killed or got a
// signal) may answer with EINTR before their data comes. libfuse may call the
// interrupt function while the completion replies and frees its state, so the
// function gets a number, not a pointer, and looks it up here.
class InterruptibleReads {
 public:
  uint64_t Add(fuse_req_t req) {
    std::lock_guard lock(mu_);
    uint64_t id = next_++;
    reads_.emplace(id, req);
    return id;
  }
  // True for the one caller that may reply: the completion or the interrupt.
  bool Claim(uint64_t id) {
    std::lock_guard lock(mu_);
    return reads_.erase(id) > 0;
  }

 private:
  std::mutex mu_;
  uint64_t next_ = 1;                               // guarded by mu_
  std::unordered_map<uint64_t, fuse_req_t> reads_;  // guarded by mu_
};

// What one mounted session owns; the session's userdata.
struct Session {
  fs::Filesystem* fs;
  InterruptibleReads interruptible;
  fuse_session* se = nullptr;  // set before the mount: requests come after
};

inline Session* SessionOf(fuse_req_t req) { return static_cast<Session*>(fuse_req_userdata(req)); }
inline fs::Filesystem* Fs(fuse_req_t req) { return SessionOf(req)->fs; }
struct stat ToStat(const fs::Attributes& a);
void ReplyError(fuse_req_t req, const Error& error, const char* op);

void AddMetaOps(fuse_lowlevel_ops* ops);   // init, lookup, forget, getattr, statfs
void AddFileOps(fuse_lowlevel_ops* ops);   // open, read, release
void AddDirOps(fuse_lowlevel_ops* ops);    // opendir, readdir, readdirplus, releasedir
void AddWriteOps(fuse_lowlevel_ops* ops);  // create, write, flush, fsync, setattr
// mkdir, rmdir, unlink, rename, symlink, readlink, link, mknod
void AddNamespaceOps(fuse_lowlevel_ops* ops);
void ReplyEntry(fuse_req_t req, const fs::Entry& entry);
// The request's uid/gid and thread group (FUSE gives the thread id).
fs::Caller CallerOf(fuse_req_t req);

}  // namespace s3rdmafs::fuse
