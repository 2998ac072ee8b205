// BodyStream: one ranged GET over plain HTTP whose body stays in its socket
// until a reader takes it with splice(2) into a pipe: the bytes never pass
// through user memory (fs/streamed_reads.h answers direct_io reads with it;
// bench/THROUGHPUT_MODEL.md has the measurement that argues for it).
// Blocking, every step under a deadline: it runs on the FUSE worker thread
// whose read it answers. Not thread-safe: one reader at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/curl_engine.h"

namespace s3rdmafs::s3 {

class BodyStream {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects to `req.url` (http:// only), sends `req` (a signed GET of
  // bytes [offset, offset + length)), reads the response head. Anything but
  // a 206 whose Content-Range starts at `offset` and whose body is `length`
  // bytes is an error: the caller's other path redoes the request and
  // makes sense of the answer. `abandon` as for SpliceInto.
  static Result<std::unique_ptr<BodyStream>> Open(const HttpRequest& req, uint64_t offset,
                                                  uint64_t length, Clock::time_point deadline,
                                                  const std::function<bool()>& abandon = nullptr);
  ~BodyStream();  // closes the connection; body bytes not taken are dropped
  BodyStream(const BodyStream&) = delete;
  BodyStream& operator=(const BodyStream&) = delete;

  uint64_t offset() const { return offset_; }  // the object offset of the next body byte
  uint64_t left() const { return left_; }      // body bytes still in the stream

  // Moves exactly `n` (<= left()) body bytes into the pipe `pipe_wr`, or
  // fails: the connection ends, the deadline passes, `abandon` says so
  // (asked between waits of at most 100 ms), or the pipe fills before `n`
  // bytes are in (the caller sizes it; socket pieces can be small). After a
  // failure the stream is spent and the pipe holds a part: discard both.
  Result<void> SpliceInto(int pipe_wr, size_t n, Clock::time_point deadline,
                          const std::function<bool()>& abandon);

 private:
  BodyStream(int fd, uint64_t offset, uint64_t length)
      : fd_(fd), offset_(offset), left_(length), length_(length) {}
  int fd_;
  uint64_t offset_;
  uint64_t left_;
  uint64_t length_;
  int low_water_ = 1;  // the socket's SO_RCVLOWAT
};

}  // namespace s3rdmafs::s3
