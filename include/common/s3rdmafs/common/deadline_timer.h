// DeadlineTimer: runs a callback after a delay, on its own thread, unless it
// was cancelled first. The one clock behind per-request deadlines (reads).
// Callbacks run without the timer's lock held and must not block for long.
// Destruction joins the thread; callbacks still pending are dropped, not run
// (their owners are being torn down too).
// Thread-safety: After and Cancel may be called from any thread, including
// from a callback.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace s3rdmafs {

class DeadlineTimer {
 public:
  DeadlineTimer();
  ~DeadlineTimer();
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // Returns an id for Cancel.
  uint64_t After(std::chrono::milliseconds delay, std::function<void()> fn);
  // The callback will not run (it may be running now: the caller's own
  // once-guard decides who wins).
  void Cancel(uint64_t id);
  size_t pending() const;

 private:
  void Run();

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::multimap<std::chrono::steady_clock::time_point, uint64_t> due_;  // guarded by mu_
  std::unordered_map<uint64_t, std::function<void()>> fns_;             // guarded by mu_
  uint64_t next_id_ = 1;                                                // guarded by mu_
  bool stopping_ = false;                                               // guarded by mu_
  std::thread thread_;
};

}  // namespace s3rdmafs
