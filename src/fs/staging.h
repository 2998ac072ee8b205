// The staging area: a local directory holding the files that are edited in
// place (random writes, appends, truncates of existing objects) until they
// are uploaded. Files are unlinked at birth (O_TMPFILE, or create + unlink),
// so a crash leaves nothing behind; leftovers of older versions are removed
// at start. Its size is bounded: a write that would pass `max_bytes` fails
// with kDiskFull (ENOSPC) and changes nothing.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::fs {

class StagingArea {
 public:
  StagingArea(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_(max_bytes) {}

  // Creates the directory if needed and removes stale staging files.
  Result<void> Prepare();
  // A new anonymous file; the caller closes it.
  Result<int> NewFile();
  // Reserves `bytes` of the bound (kDiskFull when it would be passed).
  Result<void> Charge(uint64_t bytes);
  void Release(uint64_t bytes) { used_.fetch_sub(bytes); }
  uint64_t used() const { return used_.load(); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  uint64_t max_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace s3rdmafs::fs
