// Read-ahead policy: pure (no I/O, no clock, no locks), one instance per
// inode, so several readers of one file - through one handle or many - share
// what they learn and never fetch the same range twice.
//
// Design:
//  - A *stream* is a guess that someone reads sequentially from `next`.
//    Up to `max_streams` streams are tracked per file; a read that lands within
//    `tolerance` of a stream's `next` (short forward or backward seeks, e.g.
//    out-of-order FUSE requests from kernel readahead) continues that stream.
//  - A new stream at offset 0 is assumed sequential (most files are read from
//    the start) and prefetches `initial` bytes; a new stream elsewhere is
//    assumed random and prefetches nothing until its second sequential read.
//  - Each time a stream's prefetched frontier comes within half a window of
//    the reader, the window doubles (up to `max`) and the next window is
//    planned from the frontier. So the bytes in flight per stream are bounded
//    by `max`, and per file by `max * max_streams`.
//  - A read that matches no stream replaces the least recently used stream
//    (random access resets to no prefetch).
//  - When the cache cannot take a whole window (Shortfall), the stream's
//    frontier comes back to what was fetched and its window halves: with
//    more streams than the cache holds, windows shrink until they fit.
// The global bound - the arena - is enforced by the cache: read-ahead gets
// only free or cold blocks, at most half the cache, and never waits.
#pragma once

#include <cstdint>
#include <vector>

namespace s3rdmafs::readahead {

struct PolicyConfig {
  uint64_t initial = 2ull << 20;
  uint64_t max = 64ull << 20;
  uint64_t tolerance = 1ull << 20;
  uint32_t max_streams = 4;
};

// Bytes [begin, end) to prefetch beyond the demand read; empty when begin >= end.
struct Plan {
  uint64_t begin = 0;
  uint64_t end = 0;
  // The read continues (or starts, at offset 0) a sequential stream: the
  // block it ends in part-way will be read on soon.
  bool sequential = false;
  bool empty() const { return begin >= end; }
};

class Policy {
 public:
  explicit Policy(PolicyConfig config) : config_(config) {}

  // A read of [offset, offset+length) of a file of `file_size` bytes.
  Plan OnRead(uint64_t offset, uint64_t length, uint64_t file_size);
  // Only [plan.begin, reached) of `plan` could be fetched: the rest is
  // planned again later, from a window half the size.
  void Shortfall(const Plan& plan, uint64_t reached);

  // For tests and stats.
  struct Stream {
    uint64_t next = 0;       // where the reader is expected next
    uint64_t frontier = 0;   // everything below was already planned
    uint64_t window = 0;     // current window; 0 = not yet sequential
    uint64_t last_used = 0;  // tick of last use, for LRU replacement
  };
  const std::vector<Stream>& streams() const { return streams_; }

 private:
  PolicyConfig config_;
  std::vector<Stream> streams_;
  uint64_t tick_ = 0;
};

}  // namespace s3rdmafs::readahead
