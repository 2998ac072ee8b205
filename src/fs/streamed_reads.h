// Streamed reads: a direct_io handle that reads sequentially takes its bytes
// from one GET whose body stays in the socket, moved by splice(2) into a
// pipe and from there into the reply. The bytes never touch user memory nor
// the cache: bench/reply_path_bench.sh measured 1.7x less CPU per GiB than
// the copy into cache blocks and out again. A reader of files larger than
// the cache loses nothing by the skip; one that comes back reads through the
// cache as before.
//
// Safety: a reply leaves only when its every byte is in the pipe. A read the
// stream cannot answer exactly - another offset, a stream in use by another
// read, a GET answered with anything but the 206 asked for, a connection
// that ends, a deadline - goes the cache path, and the stream is dropped
// with its pipe (a fresh pipe is empty by construction). After a failure
// the handle reads through the cache until it is closed.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/body_stream.h"

namespace s3rdmafs::fs {

// A 1 MiB reply in socket pieces (a real NIC's are an MSS, ~1.4 KiB, so
// 725 of them), with room: 1024 pipe slots.
inline constexpr int kStreamPipeBytes = 4 << 20;
// Shorter rests of a file are read through the cache (a stream costs a
// connection and a request of its own).
inline constexpr uint64_t kMinStreamBytes = 4ull << 20;

// Smaller reads go the cache path: below this a splice, a pipe move and a
// splice into /dev/fuse per request cost more than the copies they save
// (32 KiB reads: 1.6 s of CPU per GiB against 1.1).
inline constexpr size_t kMinSplicedRead = 256 << 10;

// One handle's stream; the handle owns it. Guarded by `mu`, which a read
// holds from the splice until its reply went.
struct ReadStream {
  std::mutex mu;
  std::unique_ptr<s3::BodyStream> body;
  int pipe_rd = -1, pipe_wr = -1;
  // The offset a sequential reader reads next; set by a spliced read once
  // its bytes are in. Atomic: the read after it can come while it still
  // replies, and waits for that (never for the network) instead of going
  // the cache path.
  std::atomic<uint64_t> next{0};
  bool given_up = false;  // a stream failed: this handle reads through the cache

  ReadStream() = default;
  ReadStream(const ReadStream&) = delete;
  ReadStream& operator=(const ReadStream&) = delete;
  ~ReadStream() { ClosePipe(); }

  // An empty pipe of kStreamPipeBytes (made on first use).
  Result<void> EnsurePipe();
  void ClosePipe();
  // The stream and whatever its pipe holds are dropped.
  void Drop() {
    body.reset();
    ClosePipe();
  }
};

}  // namespace s3rdmafs::fs
