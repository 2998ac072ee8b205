// Wall-clock time in nanoseconds since the epoch (mtimes, Last-Modified).
#pragma once

#include <cstdint>
#include <ctime>

namespace s3rdmafs {

inline int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace s3rdmafs
