// Streamed reads (streamed_reads.h): a direct_io read answered by splice.
#include "streamed_reads.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "open_files.h"
#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {

Result<void> ReadStream::EnsurePipe() {
  if (pipe_rd >= 0) return {};
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return MakeError(Errc::kIo, std::string("pipe: ") + ErrnoText(errno));
  pipe_rd = fds[0];
  pipe_wr = fds[1];
  if (fcntl(pipe_wr, F_SETPIPE_SZ, kStreamPipeBytes) < kStreamPipeBytes) {
    const std::string why = ErrnoText(errno);
    ClosePipe();
    return MakeError(Errc::kNoSpace, "a " + std::to_string(kStreamPipeBytes >> 20) + " MiB pipe: " +
                                         why + " (needs CAP_SYS_RESOURCE or fs.pipe-max-size)");
  }
  return {};
}

void ReadStream::ClosePipe() {
  if (pipe_rd >= 0) close(pipe_rd);
  if (pipe_wr >= 0) close(pipe_wr);
  pipe_rd = pipe_wr = -1;
}

SplicedRead::SplicedRead(Filesystem* fs, std::shared_ptr<ReadStream> stream,
                         std::unique_lock<std::mutex> lock, WorkGate::Pass pass, size_t bytes)
    : fs_(fs),
      stream_(std::move(stream)),
      lock_(std::move(lock)),
      pass_(std::move(pass)),
      bytes_(bytes) {}

SplicedRead::SplicedRead(SplicedRead&& other) noexcept
    : fs_(other.fs_),
      stream_(std::move(other.stream_)),
      lock_(std::move(other.lock_)),
      pass_(std::move(other.pass_)),
      bytes_(other.bytes_),
      done_(other.done_) {
  other.done_ = true;
}

SplicedRead::~SplicedRead() {
  if (!done_) Sent(false);
}

int SplicedRead::pipe() const { return stream_->pipe_rd; }

void SplicedRead::Sent(bool ok) {
  if (done_) return;
  done_ = true;
  int left = 0;
  if (ok && ioctl(stream_->pipe_rd, FIONREAD, &left) == 0 && left == 0) {
    fs_->streamed_bytes_.fetch_add(bytes_);
  } else {
    // The reader went away (interrupted), or the reply failed: whatever the
    // pipe still holds must never lead a later reply. The reader that comes
    // back for these bytes reads them through the cache.
    LOG_DEBUG(
        "a spliced reply of %zu bytes did not go (%s, %d bytes left in the pipe): the "
        "stream is dropped",
        bytes_, ok ? "sent" : "failed", left);
    stream_->Drop();
  }
  lock_.unlock();
  pass_.Release();
}

Result<std::optional<SplicedRead>> Filesystem::SpliceRead(uint64_t fh, uint64_t offset, size_t size,
                                                          const std::function<bool()>& abandon) {
  if (!options_.streamed_reads || size < kMinSplicedRead || no_stream_pipes_.load())
    return std::nullopt;
  std::shared_ptr<FileHandle> h = open_->File(fh);
  if (!h || !h->stream || h->dirty) return std::nullopt;
  ReadStream& s = *h->stream;
  std::unique_lock lock(s.mu, std::try_to_lock);
  if (!lock) {
    // Another read of this handle has the stream. If its bytes are all in
    // and this read follows it, it is only replying: wait for that. Else it
    // may still wait on the network, which no other read waits behind: the
    // cache answers this one.
    if (offset != s.next.load()) return std::nullopt;
    lock.lock();
  }
  if (s.given_up) return std::nullopt;
  const OpenFiles::ReadTarget target = open_->ReadTargetOf(*h);
  const std::string& key = target.key;
  const meta::ObjectVersion& version = target.version;
  if (target.aside || version.etag.empty() || offset >= version.size) return std::nullopt;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(size, version.size - offset));
  const bool sequential = offset == s.next.load();
  if (s.body && s.body->offset() != offset) {  // the reader moved
    LOG_DEBUG("stream of %s at %llu, the read at %llu: dropped", key.c_str(),
              static_cast<unsigned long long>(s.body->offset()),
              static_cast<unsigned long long>(offset));
    s.Drop();
  }
  if (!s.body && (!sequential || version.size - offset < kMinStreamBytes)) {
    s.next.store(offset + n);
    return std::nullopt;
  }
  auto pass = reads_.Enter();
  if (!pass) return std::nullopt;
  // A worker that waits here is one stat and lookup cannot have: past the
  // cap, this read goes the cache path, which waits without a thread.
  if (streamed_waits_.fetch_add(1) >= options_.max_streamed_waits) {
    streamed_waits_.fetch_sub(1);
    return std::nullopt;
  }
  struct Leave {
    std::atomic<uint32_t>& n;
    ~Leave() { n.fetch_sub(1); }
  } leave{streamed_waits_};
  const auto deadline = std::chrono::steady_clock::now() + options_.read_timeout;
  const auto give_up = [&](const Error& e) -> Result<std::optional<SplicedRead>> {
    if (e.code != Errc::kNotSupported && e.code != Errc::kCancelled) {
      LOG_WARN("streamed read of %s given up, it reads through the cache: %s", key.c_str(),
               e.ToString().c_str());
      stream_failures_.fetch_add(1);
    }
    s.Drop();
    s.given_up = true;
    if (e.code == Errc::kTimedOut)  // the read's whole deadline went waiting: answer it
      return MakeError(Errc::kTimedOut, "the read did not complete within " +
                                            std::to_string(options_.read_timeout.count() / 1000) +
                                            " s (fuse.read_timeout): " + e.message);
    return std::nullopt;
  };
  if (!s.body) {
    if (auto p = s.EnsurePipe(); !p) {
      if (!no_stream_pipes_.exchange(true))
        LOG_WARN("fuse.splice_reads is off for this mount, reads go through the cache: %s",
                 p.error().ToString().c_str());
      return std::nullopt;
    }
    auto body =
        store_->OpenBodyStream(key, offset, version.size - offset, version.etag, deadline, abandon);
    if (!body && body.error().code == Errc::kCancelled) return std::nullopt;  // the reader left
    if (!body) return give_up(body.error());
    s.body = std::move(*body);
    streams_opened_.fetch_add(1);
  }
  if (auto r = s.body->SpliceInto(s.pipe_wr, n, deadline, abandon); !r) {
    if (r.error().code == Errc::kCancelled) {  // the reader gave up, not the stream
      s.Drop();
      return std::nullopt;
    }
    return give_up(r.error());
  }
  if (s.body->left() == 0) s.body.reset();  // the object's end: the pipe stays for the reply
  s.next.store(offset + n);  // only now: the read after this one may wait for this reply
  h->has_read = true;
  return std::optional<SplicedRead>(
      SplicedRead(this, h->stream, std::move(lock), std::move(*pass), n));
}

StreamStats Filesystem::streamed() const {
  return {streams_opened_.load(), streamed_bytes_.load(), stream_failures_.load()};
}

}  // namespace s3rdmafs::fs
