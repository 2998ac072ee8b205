// One big memory arena, allocated once at start and never grown: the whole
// page cache lives in it, so the daemon's data memory is bounded by
// configuration. It is page-aligned and mmap-backed so that it can be
// registered for RDMA in one piece (the registration itself lives in rdma/).
// Thread-safety: immutable after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::mem {

class Arena {
 public:
  // Tries explicit huge pages (MAP_HUGETLB) when `hugepages` is set, then
  // transparent huge pages (madvise), then plain pages. With `prefault`
  // every page is touched before Create returns.
  static Result<std::unique_ptr<Arena>> Create(uint64_t size, bool hugepages,
                                               bool prefault = false);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  std::byte* base() const { return base_; }
  uint64_t size() const { return size_; }
  const char* backing() const { return backing_; }  // "hugetlb", "thp" or "4k"

 private:
  Arena(std::byte* base, uint64_t size, const char* backing)
      : base_(base), size_(size), backing_(backing) {}
  std::byte* base_;
  uint64_t size_;
  const char* backing_;
};

}  // namespace s3rdmafs::mem
