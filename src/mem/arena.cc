#include "s3rdmafs/mem/arena.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::mem {

Result<std::unique_ptr<Arena>> Arena::Create(uint64_t size, bool hugepages, bool prefault) {
  constexpr uint64_t kHuge = 2ull << 20;
  if (size == 0) return MakeError(Errc::kInvalidArgument, "arena size is 0");
  if (hugepages && size % kHuge == 0) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
    if (p != MAP_FAILED)
      return std::unique_ptr<Arena>(new Arena(static_cast<std::byte*>(p), size, "hugetlb"));
  }
  // MAP_NORESERVE: pages are committed as blocks are first filled, so an idle
  // mount of a large arena costs little RSS; the bound still holds.
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED)
    return MakeError(Errc::kNoSpace, "cannot map a cache arena of " + std::to_string(size) +
                                         " bytes: " + ErrnoText(errno));
  const char* backing = "4k";
  if (hugepages && madvise(p, size, MADV_HUGEPAGE) == 0) backing = "thp";
  if (prefault) {
    // Touch every page now: first-touch zeroing measured at ~45% of the
    // daemon's CPU during a cold read (more on VMs), and RDMA registration
    // pins every page anyway. The cost moves to start-up, once.
#ifdef MADV_POPULATE_WRITE
    if (madvise(p, size, MADV_POPULATE_WRITE) != 0)
#endif
      for (uint64_t off = 0; off < size; off += 4096) static_cast<volatile char*>(p)[off] = 0;
  }
  return std::unique_ptr<Arena>(new Arena(static_cast<std::byte*>(p), size, backing));
}

Arena::~Arena() { munmap(base_, size_); }

}  // namespace s3rdmafs::mem
