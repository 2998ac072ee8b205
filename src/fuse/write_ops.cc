#include <fcntl.h>

#include "ops.h"
#include "s3rdmafs/common/clock.h"

namespace s3rdmafs::fuse {
namespace {

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  auto r = Fs(req)->Create(parent, name, mode, fi->flags, CallerOf(req));
  if (!r) return ReplyError(req, r.error(), "create");
  auto& [entry, opened] = *r;
  fi->fh = opened.fh;
  fi->keep_cache = opened.keep_cache;
  fi->direct_io = opened.direct_io;
  fuse_entry_param e = {};
  e.ino = entry.attr.ino;
  e.attr = ToStat(entry.attr);
  e.attr_timeout = entry.attr_timeout;
  e.entry_timeout = entry.entry_timeout;
  if (fuse_reply_create(req, &e, fi) != 0) Fs(req)->Release(opened.fh);
}

void Write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
           fuse_file_info* fi) {
  auto r =
      Fs(req)->Write(fi->fh, static_cast<uint64_t>(off),
                     std::span<const std::byte>(reinterpret_cast<const std::byte*>(buf), size));
  if (!r) return ReplyError(req, r.error(), "write");
  fuse_reply_write(req, *r);
}

void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  auto r = Fs(req)->Flush(fi->fh, CallerOf(req));
  if (!r) return ReplyError(req, r.error(), "flush");
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  auto r = Fs(req)->Fsync(fi->fh);
  if (!r) return ReplyError(req, r.error(), "fsync");
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  fs::SetAttrRequest r;
  if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) r.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) r.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<uint64_t>(attr->st_size);
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    r.mtime_ns = RealtimeNs();
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    r.mtime_ns = static_cast<int64_t>(attr->st_mtim.tv_sec) * 1000000000 + attr->st_mtim.tv_nsec;
  }
  // atime is kept as utimensat sets it (x-amz-meta-atime, as s3fs); reads
  // never move it. ctime is the mount's to set.
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    r.atime_ns = RealtimeNs();
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    r.atime_ns = static_cast<int64_t>(attr->st_atim.tv_sec) * 1000000000 + attr->st_atim.tv_nsec;
  }
  auto a = Fs(req)->SetAttr(ino, r);
  if (!a) return ReplyError(req, a.error(), "setattr");
  struct stat st = ToStat(*a);
  fuse_reply_attr(req, &st, Fs(req)->attr_timeout());
}

}  // namespace

void AddWriteOps(fuse_lowlevel_ops* ops) {
  ops->create = Create;
  ops->write = Write;
  ops->flush = Flush;
  ops->fsync = Fsync;
  ops->fsyncdir = FsyncDir;
  ops->setattr = SetAttr;
}

}  // namespace s3rdmafs::fuse
