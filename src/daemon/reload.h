// SIGHUP: re-reads the configuration (file and command-line overrides) and
// applies what can change under a live mount - the metadata TTLs and the log
// level; every other changed key is named in the log as needing a remount.
// A configuration that no longer parses or validates changes nothing.
//
// SIGHUP is blocked in every thread (BlockReloadSignal before any thread
// starts) and taken by this object's thread with sigtimedwait, so libfuse's
// own SIGHUP handler (which would unmount) never runs.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

#include "s3rdmafs/config/config.h"
#include "s3rdmafs/fs/filesystem.h"

namespace s3rdmafs::daemon {

void BlockReloadSignal();

class Reloader {
 public:
  Reloader(std::function<Result<config::Config>()> load, config::Config current,
           fs::Filesystem* fs);
  ~Reloader();
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  // One reload, as SIGHUP does it; returns what was applied (tests, logs).
  std::string ReloadNow();

 private:
  std::function<Result<config::Config>()> load_;
  config::Config current_;  // touched by the reload thread only
  fs::Filesystem* fs_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace s3rdmafs::daemon
