#include "s3rdmafs/common/deadline_timer.h"

namespace s3rdmafs {

DeadlineTimer::DeadlineTimer() : thread_([this] { Run(); }) {}

DeadlineTimer::~DeadlineTimer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

uint64_t DeadlineTimer::After(std::chrono::milliseconds delay, std::function<void()> fn) {
  bool earliest;
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    auto at = std::chrono::steady_clock::now() + delay;
    earliest = due_.empty() || at < due_.begin()->first;
    due_.emplace(at, id);
    fns_.emplace(id, std::move(fn));
  }
  if (earliest) wake_.notify_one();
  return id;
}

void DeadlineTimer::Cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  fns_.erase(id);  // its entry in due_ is skipped when it comes up
}

size_t DeadlineTimer::pending() const {
  std::lock_guard lock(mu_);
  return fns_.size();
}

void DeadlineTimer::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (due_.empty()) {
      wake_.wait(lock);
      continue;
    }
    auto first = due_.begin();
    if (first->first > std::chrono::steady_clock::now()) {
      wake_.wait_until(lock, first->first);
      continue;
    }
    uint64_t id = first->second;
    due_.erase(first);
    auto it = fns_.find(id);
    if (it == fns_.end()) continue;  // cancelled
    std::function<void()> fn = std::move(it->second);
    fns_.erase(it);
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace s3rdmafs
