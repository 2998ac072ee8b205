// The libfuse3 low-level adapter: translates FUSE requests into
// fs::Filesystem calls and results into replies. No logic lives here.
#pragma once

#include <functional>
#include <string>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/fs/filesystem.h"

namespace s3rdmafs::fuse {

struct MountOptions {
  std::string mountpoint;
  std::string fsname = "s3rdmafs";
  bool allow_other = false;
  bool debug = false;
  unsigned max_threads = 16;
  bool read_only = false;
  // The owner's shutdown (daemon::Daemon::Shutdown), called once the loop
  // has stopped taking requests and before the session is destroyed. It
  // must return only when no reply is owed any more (fs::Filesystem::Quiesce):
  // no reply ever goes to a dead session.
  std::function<void()> shutdown;
};

// The one place our errors become errno values.
int ErrnoFor(const Error& error);

// Mounts `fs` at options.mountpoint and serves requests until unmounted or
// SIGINT/SIGTERM/SIGHUP. `on_mounted` runs once the mount is live (the daemon
// detaches from its terminal there). Returns an error if the mount fails.
Result<void> MountAndServe(fs::Filesystem* fs, const MountOptions& options,
                           const std::function<void()>& on_mounted);

}  // namespace s3rdmafs::fuse
