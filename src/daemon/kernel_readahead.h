// The kernel's read-ahead window for this mount (its backing device's
// read_ahead_kb). FUSE mounts get 128 KiB, so page-cache reads reach the
// daemon as 128 KiB requests, one or two at a time; a larger window makes
// them max_pages-sized (1 MiB) and keeps several in flight: fewer requests,
// wake-ups and copies per GiB. Needs root (sysfs): otherwise the kernel's
// default stays, and the caller logs why.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::daemon {

Result<void> SetKernelReadahead(dev_t mount_device, uint64_t bytes);

}  // namespace s3rdmafs::daemon
