#include <fcntl.h>

#include <cerrno>

#include "ops.h"

namespace s3rdmafs::fuse {
namespace {

void OnInterrupt(fuse_req_t req, void* data) {
  if (!SessionOf(req)->interruptible.Claim(reinterpret_cast<uintptr_t>(data)))
    return;  // answered already
  fuse_reply_err(req, EINTR);
}

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
  // The reply may be sent from a fetch completion thread. The filesystem
  // counts the read until that is done, and the daemon's shutdown waits for
  // it before this session goes away (fuse_mount.h).
  Session* session = SessionOf(req);
  // A sequential direct_io reader (the kernel does not say so here; the
  // handle knows): the reply from the socket by splice when the handle's
  // stream can give all of it (fs/streamed_reads.h).
  // It waits on this worker: it lets go when the reader is interrupted or
  // the session ends (a signal), not only at fuse.read_timeout.
  const auto abandon = [req, session] {
    return fuse_req_interrupted(req) != 0 || fuse_session_exited(session->se) != 0;
  };
  auto spliced = session->fs->SpliceRead(fi->fh, static_cast<uint64_t>(off), size, abandon);
  if (!spliced) return ReplyError(req, spliced.error(), "read");
  if (*spliced) {
    fs::SplicedRead& ready = **spliced;
    fuse_bufvec data = FUSE_BUFVEC_INIT(ready.bytes());
    data.buf[0].flags = FUSE_BUF_IS_FD;
    data.buf[0].fd = ready.pipe();
    ready.Sent(fuse_reply_data(req, &data, static_cast<fuse_buf_copy_flags>(0)) == 0);
    return;
  }
  const uint64_t id = session->interruptible.Add(req);
  // libfuse hands the interrupt callback a void*: the read's id travels in it.
  fuse_req_interrupt_func(
      req, OnInterrupt,
      reinterpret_cast<void*>(static_cast<uintptr_t>(id)));  // NOLINT(performance-no-int-to-ptr)
  session->fs->ReadAsync(fi->fh, static_cast<uint64_t>(off), size,
                         [req, session, id](Result<fs::ReadReply> r) {
                           if (!session->interruptible.Claim(id))
                             return;  // the reader was interrupted and answered
                           if (!r) {
                             ReplyError(req, r.error(), "read");
                           } else if (r->iov.empty()) {
                             fuse_reply_buf(req, nullptr, 0);
                           } else {
                             // The iovecs point into pinned cache blocks; the pins are released
                             // when `r` goes out of scope, after the kernel has copied the reply.
                             fuse_reply_iov(req, r->iov.data(), static_cast<int>(r->iov.size()));
                           }
                         });
}

void Release(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  Fs(req)->Release(fi->fh);
  fuse_reply_err(req, 0);
}

}  // namespace

void AddFileOps(fuse_lowlevel_ops* ops) {
  ops->open = Open;
  ops->read = Read;
  ops->release = Release;
}

}  // namespace s3rdmafs::fuse
