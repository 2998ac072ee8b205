#include <fcntl.h>

#include <cerrno>
#include <mutex>
#include <unordered_map>

#include "ops.h"

namespace s3rdmafs::fuse {
namespace {

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
  uint64_t next_ = 1;
  std::unordered_map<uint64_t, fuse_req_t> reads_;
};

InterruptibleReads& Interruptible() {
  static InterruptibleReads reads;
  return reads;
}

void OnInterrupt(fuse_req_t req, void* data) {
  if (!Interruptible().Claim(reinterpret_cast<uintptr_t>(data))) return;  // answered already
  fuse_reply_err(req, EINTR);
  InFlightReads().fetch_sub(1);
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
  // The reply may be sent from the fetch completion thread; the in-flight
  // count lets shutdown wait for it before the session goes away.
  InFlightReads().fetch_add(1);
  const uint64_t id = Interruptible().Add(req);
  // libfuse hands the interrupt callback a void*: the read's id travels in it.
  fuse_req_interrupt_func(
      req, OnInterrupt,
      reinterpret_cast<void*>(static_cast<uintptr_t>(id)));  // NOLINT(performance-no-int-to-ptr)
  Fs(req)->ReadAsync(fi->fh, static_cast<uint64_t>(off), size, [req, id](Result<fs::ReadReply> r) {
    if (!Interruptible().Claim(id)) return;  // the reader was interrupted and answered
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
