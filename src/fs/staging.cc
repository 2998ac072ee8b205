#include "staging.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "s3rdmafs/common/errno_text.h"

namespace s3rdmafs::fs {

namespace {
constexpr const char* kStagePrefix = "s3rdmafs-stage-";
}

Result<void> StagingArea::Prepare() {
  // mkdir -p
  for (size_t pos = 1; pos <= dir_.size(); ++pos) {
    if (pos != dir_.size() && dir_[pos] != '/') continue;
    std::string part = dir_.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return MakeError(Errc::kConfig,
                       "write.staging_dir: cannot create '" + part + "': " + ErrnoText(errno));
  }
  DIR* d = opendir(dir_.c_str());
  if (!d)
    return MakeError(Errc::kConfig,
                     "write.staging_dir: cannot open '" + dir_ + "': " + ErrnoText(errno));
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
  while (dirent* e = readdir(d))
    if (strncmp(e->d_name, kStagePrefix, strlen(kStagePrefix)) == 0)
      unlinkat(dirfd(d), e->d_name, 0);
  closedir(d);
  if (access(dir_.c_str(), W_OK) != 0)
    return MakeError(Errc::kConfig, "write.staging_dir: '" + dir_ + "' is not writable");
  return {};
}

Result<int> StagingArea::NewFile() {
  int fd = open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string path = dir_ + "/" + kStagePrefix + "XXXXXX";
  fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return MakeError(err == ENOSPC || err == EDQUOT ? Errc::kDiskFull : Errc::kIo,
                     "staging file in " + dir_ + ": " + ErrnoText(err));
  }
  unlink(path.c_str());
  return fd;
}

Result<void> StagingArea::Charge(uint64_t bytes) {
  uint64_t now = used_.fetch_add(bytes) + bytes;
  if (now > max_) {
    used_.fetch_sub(bytes);
    return MakeError(Errc::kDiskFull, "the staging area is full (write.staging_max = " +
                                          std::to_string(max_ >> 20) + " MiB)");
  }
  return {};
}

}  // namespace s3rdmafs::fs
