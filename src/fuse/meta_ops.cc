#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ops.h"
#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fuse {

struct stat ToStat(const fs::Attributes& a) {
  struct stat st = {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st.st_blksize = 1 << 20;  // encourage large reads from tools that honour it (cp, cat)
  st.st_mtim.tv_sec = a.mtime_ns / 1000000000;
  st.st_mtim.tv_nsec = a.mtime_ns % 1000000000;
  st.st_atim.tv_sec = a.atime_ns / 1000000000;
  st.st_atim.tv_nsec = a.atime_ns % 1000000000;
  st.st_ctim.tv_sec = a.ctime_ns / 1000000000;
  st.st_ctim.tv_nsec = a.ctime_ns % 1000000000;
  st.st_rdev = static_cast<dev_t>(a.rdev);
  return st;
}

void ReplyError(fuse_req_t req, const Error& error, const char* op) {
  int err = ErrnoFor(error);
  // Expected outcomes stay quiet; everything else names its cause once.
  if (err == ENOENT)
    LOG_DEBUG("%s: %s", op, error.ToString().c_str());
  else if (err == EACCES)
    LOG_ERROR("%s: permission denied by the server (check credentials): %s", op,
              error.ToString().c_str());
  else
    LOG_WARN("%s: %s -> %s", op, error.ToString().c_str(), ErrnoText(err));
  fuse_reply_err(req, err);
}

fs::Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  fs::Caller who{ctx->uid, ctx->gid, static_cast<uint32_t>(ctx->pid)};
  // /proc/<tid>/status names the thread group: threads of one process are one opener.
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(ctx->pid));
  if (FILE* f = fopen(path, "re")) {
    char line[256];
    while (fgets(line, sizeof line, f))
      if (strncmp(line, "Tgid:", 5) == 0) {
        who.process = static_cast<uint32_t>(strtoul(line + 5, nullptr, 10));
        break;
      }
    fclose(f);
  }
  return who;
}

void ReplyEntry(fuse_req_t req, const fs::Entry& entry) {
  fuse_entry_param e = {};
  e.ino = entry.attr.ino;
  e.attr = ToStat(entry.attr);
  e.attr_timeout = entry.attr_timeout;
  e.entry_timeout = entry.entry_timeout;
  fuse_reply_entry(req, &e);
}

namespace {

void Init(void* /*userdata*/, fuse_conn_info* conn) {
  // Always readdirplus: `ls -l` then gets attributes from the listing itself,
  // with no per-file HEAD.
  if (conn->capable & FUSE_CAP_READDIRPLUS) {
    conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  }
  conn->want |= FUSE_CAP_ASYNC_READ;
  // fuse_reply_data from a pipe goes by splice: streamed reads' one copy.
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  // Symlink targets are immutable objects: let the kernel cache them.
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  // O_TRUNC arrives with the open (not as a SETATTR before it), so a
  // truncating writer publishes once, at close, never an empty object first.
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  // No writeback cache: writes reach us in order and errors reach the writer.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = Fs(req)->Lookup(parent, name);
  if (!r) {
    if (r.error().code == Errc::kNotFound || r.error().code == Errc::kNoSuchKey) {
      // A negative entry: the kernel remembers the miss for negative_ttl.
      fuse_entry_param e = {};
      e.entry_timeout = Fs(req)->negative_timeout();
      fuse_reply_entry(req, &e);
      return;
    }
    return ReplyError(req, r.error(), "lookup");
  }
  ReplyEntry(req, *r);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Fs(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Fs(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  auto r = Fs(req)->GetAttr(ino);
  if (!r) return ReplyError(req, r.error(), "getattr");
  struct stat st = ToStat(*r);
  fuse_reply_attr(req, &st, Fs(req)->attr_timeout());
}

void StatFs(fuse_req_t req, fuse_ino_t /*ino*/) {
  fs::FsStats s = Fs(req)->StatFs();
  struct statvfs v = {};
  v.f_bsize = s.block_size;
  v.f_frsize = s.block_size;
  // An object store has no fixed capacity: report a 1 PiB device that is
  // nearly free, so tools that check space before writing (cp, rsync, df
  // scripts) go ahead; used = what this mount caches in memory.
  v.f_blocks = (1ull << 50) / s.block_size;
  v.f_bfree = v.f_blocks - s.blocks;
  v.f_bavail = v.f_bfree;
  v.f_files = 1ull << 32;
  v.f_ffree = v.f_files - s.inodes;
  v.f_namemax = 255;
  fuse_reply_statfs(req, &v);
}

}  // namespace

void AddMetaOps(fuse_lowlevel_ops* ops) {
  ops->init = Init;
  ops->lookup = Lookup;
  ops->forget = Forget;
  ops->forget_multi = ForgetMulti;
  ops->getattr = GetAttr;
  ops->statfs = StatFs;
}

}  // namespace s3rdmafs::fuse
