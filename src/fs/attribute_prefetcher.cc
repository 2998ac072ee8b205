#include "attribute_prefetcher.h"

namespace s3rdmafs::fs {

// Each of at most `parallel_` slots runs fetches one after another: a fetch's
// completion takes the next queued entry with the slot it holds, and only the
// last step of a slot (giving it back) wakes Stop(), after which nothing of
// the slot touches this object again.

void AttributePrefetcher::Add(uint64_t ino, std::string key) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return;
    if (in_flight_ >= parallel_) {
      queue_.emplace_back(ino, std::move(key));
      return;
    }
    ++in_flight_;
  }
  RunSlot({ino, std::move(key)});
}

void AttributePrefetcher::Stop() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  queue_.clear();
  idle_.wait(lock, [this] { return in_flight_ == 0; });
}

void AttributePrefetcher::RunSlot(std::pair<uint64_t, std::string> next) {
  for (;;) {
    if (fetch_(next.first, next.second, [this] { Finished(); })) return;  // it carries the slot
    if (!TakeNextOrRelease(&next)) return;
  }
}

void AttributePrefetcher::Finished() {
  std::pair<uint64_t, std::string> next;
  if (TakeNextOrRelease(&next)) RunSlot(std::move(next));
}

bool AttributePrefetcher::TakeNextOrRelease(std::pair<uint64_t, std::string>* next) {
  std::lock_guard lock(mu_);
  if (!stopping_ && !queue_.empty()) {
    *next = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }
  if (--in_flight_ == 0) idle_.notify_all();
  return false;
}

}  // namespace s3rdmafs::fs
