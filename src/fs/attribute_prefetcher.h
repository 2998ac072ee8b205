// AttributePrefetcher (internal to the fs layer): background attribute
// fetches for files a readdirplus listed without their x-amz-meta-*. `ls -l`
// reads the whole listing before it stats, so the attributes are often there
// when the LOOKUP comes. Queued in listing order, at most `parallel` at once,
// each started from the previous one's completion (no thread of its own).
// Its lock is a leaf: the fetch function runs without it.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

namespace s3rdmafs::fs {

class AttributePrefetcher {
 public:
  // Starts one fetch and returns true, calling `done` when it ends; or
  // returns false (without calling `done`) when the entry needs none any
  // more (a LOOKUP got there first).
  using Fetch =
      std::function<bool(uint64_t ino, const std::string& key, std::function<void()> done)>;
  AttributePrefetcher(uint32_t parallel, size_t max_queued, Fetch fetch)
      : parallel_(parallel), max_queued_(max_queued), fetch_(std::move(fetch)) {}
  ~AttributePrefetcher() { Stop(); }
  AttributePrefetcher(const AttributePrefetcher&) = delete;
  AttributePrefetcher& operator=(const AttributePrefetcher&) = delete;

  // Dropped when the queue is full or the prefetcher stopped.
  void Add(uint64_t ino, std::string key);
  // Drops what is queued and waits for the fetches in flight. Idempotent.
  void Stop();

 private:
  void RunSlot(std::pair<uint64_t, std::string> next);
  void Finished();
  // The next queued entry for the caller's slot, or the slot given back.
  bool TakeNextOrRelease(std::pair<uint64_t, std::string>* next);

  const uint32_t parallel_;
  const size_t max_queued_;
  const Fetch fetch_;
  std::mutex mu_;
  std::condition_variable idle_;
  uint32_t in_flight_ = 0;                              // guarded by mu_
  std::deque<std::pair<uint64_t, std::string>> queue_;  // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_
};

}  // namespace s3rdmafs::fs
