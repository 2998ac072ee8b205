// A request body that is read from a file while it is sent (pread straight
// into the transport's buffer): the write path's staging file, so a part goes
// out with no copy of its own. The caller keeps the fd open until the
// request's callback. Bytes past the file's end go out as zeros: a writer may
// truncate the file under an upload, and then that part is stale and resent.
#pragma once

#include <cstdint>

namespace s3rdmafs::s3 {

struct FileRegion {
  int fd = -1;
  uint64_t offset = 0, length = 0;
  bool empty() const { return fd < 0; }
};

}  // namespace s3rdmafs::s3
