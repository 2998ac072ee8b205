#include <fcntl.h>

#include "ops.h"

namespace s3rdmafs::fuse {
namespace {

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  bool write = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  auto r = Fs(req)->Open(ino, fi->flags, write ? CallerOf(req) : fs::Caller{});
  if (!r) return ReplyError(req, r.error(), "open");
  fi->fh = r->fh;
  fi->keep_cache = r->keep_cache;  // same object version as the last open: kernel pages stay valid
  fi->direct_io = r->direct_io;
  if (fuse_reply_open(req, fi) != 0) Fs(req)->Release(r->fh);  // the opener went away
}

void Read(fuse_req_t req, fuse_ino_t /*ino*/, size_t size, off_t off, fuse_file_info* fi) {
  // The reply may be sent from the fetch completion thread; the in-flight
  // count lets shutdown wait for it before the session goes away.
  InFlightReads().fetch_add(1);
  Fs(req)->ReadAsync(fi->fh, static_cast<uint64_t>(off), size, [req](Result<fs::ReadReply> r) {
    if (!r) {
      ReplyError(req, r.error(), "read");
    } else if (r->iov.empty()) {
      fuse_reply_buf(req, nullptr, 0);
    } else {
      // The iovecs point into pinned cache blocks; the pins are released when
      // `r` goes out of scope, after the kernel has copied the reply.
      fuse_reply_iov(req, r->iov.data(), static_cast<int>(r->iov.size()));
    }
    InFlightReads().fetch_sub(1);
  });
}

void Release(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  Fs(req)->Release(fi->fh);
  fuse_reply_err(req, 0);
}

}  // namespace

std::atomic<int64_t>& InFlightReads() {
  static std::atomic<int64_t> count{0};
  return count;
}

void AddFileOps(fuse_lowlevel_ops* ops) {
  ops->open = Open;
  ops->read = Read;
  ops->release = Release;
}

}  // namespace s3rdmafs::fuse
