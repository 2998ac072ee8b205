#include "kernel_readahead.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "s3rdmafs/common/errno_text.h"

namespace s3rdmafs::daemon {

Result<void> SetKernelReadahead(dev_t mount_device, uint64_t bytes) {
  const std::string path = "/sys/class/bdi/" + std::to_string(major(mount_device)) + ":" +
                           std::to_string(minor(mount_device)) + "/read_ahead_kb";
  const std::string kib = std::to_string(bytes >> 10) + "\n";
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return MakeError(Errc::kIo, path + ": " + ErrnoText(errno));
  ssize_t n = write(fd, kib.data(), kib.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(kib.size()))
    return MakeError(Errc::kIo, path + ": " + ErrnoText(err));
  return {};
}

}  // namespace s3rdmafs::daemon
