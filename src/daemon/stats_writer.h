// Writes the daemon's counters to a file every second (and once at stop), in
// Prometheus text format, via a temporary file and rename so a reader never
// sees half a file. The metrics endpoint of the packaging issue can serve the
// same text.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "startup.h"

namespace s3rdmafs::daemon {

std::string RenderStats(const Daemon& d);

class StatsWriter {
 public:
  StatsWriter(const Daemon* daemon, std::string path);
  ~StatsWriter();  // writes a final snapshot

 private:
  void WriteOnce();
  const Daemon* daemon_;
  std::string path_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace s3rdmafs::daemon
