#include "staged_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <string>

#include "s3rdmafs/common/errno_text.h"

namespace s3rdmafs::fs {

Result<void> PwriteAll(int fd, const std::byte* data, uint64_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t w = pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      return MakeError(err == ENOSPC || err == EDQUOT ? Errc::kDiskFull : Errc::kIo,
                       std::string("staging write: ") + ErrnoText(err));
    }
    data += w;
    n -= w;
    offset += w;
  }
  return {};
}

Result<void> PreadAll(int fd, std::byte* out, uint64_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return MakeError(Errc::kIo, std::string("staging read: ") + ErrnoText(errno));
    if (r == 0) {
      memset(out, 0, n);
      return {};
    }
    out += r;
    n -= r;
    offset += r;
  }
  return {};
}

Result<std::string> UploadNow(fetch::PartUploader* uploader, fetch::UploadJob job) {
  std::promise<Result<std::string>> p;
  auto f = p.get_future();
  uploader->Upload(std::move(job), [&p](Result<std::string> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace s3rdmafs::fs
