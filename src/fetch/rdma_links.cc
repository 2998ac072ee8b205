#include "s3rdmafs/fetch/rdma_links.h"

#include <algorithm>

#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fetch {

using Clock = std::chrono::steady_clock;

RdmaLinks::RdmaLinks(std::vector<Link> links, Options options) : options_(options) {
  const auto now = Clock::now();
  for (Link& l : links) {
    Slot s;
    s.conn = l.first;
    s.link = std::move(l);
    s.pause = options_.first_retry;
    s.next_try = now + options_.first_retry;
    slots_.push_back(std::move(s));
  }
  thread_ = std::thread([this] { Run(); });
}

RdmaLinks::~RdmaLinks() { Stop(); }

void RdmaLinks::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  for (Slot& s : slots_) s.conn.reset();
}

std::shared_ptr<rdma::TokenSource> RdmaLinks::Current(size_t i, uint64_t* generation) const {
  std::lock_guard lock(mu_);
  if (generation) *generation = slots_[i].generation;
  const auto& conn = slots_[i].conn;
  return conn && !conn->retired() ? conn : nullptr;
}

bool RdmaLinks::Lost(size_t i, const std::shared_ptr<rdma::TokenSource>& conn) {
  if (!conn) return false;
  const bool retired_here = !conn->retired();
  conn->Retire();  // first: no late transfer may reach memory about to be reused
  std::lock_guard lock(mu_);
  Slot& s = slots_[i];
  if (s.conn == conn) {
    s.conn.reset();
    s.pause = options_.first_retry;
    s.next_try = Clock::now() + options_.first_retry;
  }
  return retired_here;
}

uint64_t RdmaLinks::generation(size_t i) const {
  std::lock_guard lock(mu_);
  return slots_[i].generation;
}

size_t RdmaLinks::connected() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(std::count_if(
      slots_.begin(), slots_.end(), [](const Slot& s) { return s.conn && !s.conn->retired(); }));
}

uint64_t RdmaLinks::reconnects() const {
  std::lock_guard lock(mu_);
  return reconnects_;
}

void RdmaLinks::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    const Clock::time_point due = Pass();
    lock.lock();
    wake_.wait_until(lock, due, [this] { return stop_; });
  }
}

Clock::time_point RdmaLinks::Pass() {
  Clock::time_point due = Clock::now() + options_.health_check;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    std::shared_ptr<rdma::TokenSource> conn;
    Clock::time_point next_try;
    {
      std::lock_guard lock(mu_);
      if (stop_) return due;
      conn = s.conn;
      next_try = s.next_try;
    }
    if (conn && conn->Healthy()) continue;
    if (conn) {  // the peer went away (or a request retired it just now)
      conn->Retire();
      LOG_WARN("RDMA connection to %s ended: reconnecting in the background, HTTP meanwhile",
               s.link.name.c_str());
      std::lock_guard lock(mu_);
      if (s.conn == conn) {
        s.conn.reset();
        s.pause = options_.first_retry;
        s.next_try = Clock::now() + options_.first_retry;
      }
      due = std::min(due, s.next_try);
      continue;
    }
    if (Clock::now() < next_try) {
      due = std::min(due, next_try);
      continue;
    }
    // Outside the lock: a connection attempt does network I/O (rdma_cm and
    // the signed handshake), bounded by their own timeouts.
    Result<std::shared_ptr<rdma::TokenSource>> made = s.link.connect();
    std::lock_guard lock(mu_);
    if (stop_) return due;
    if (made) {
      s.conn = *made;
      ++s.generation;
      ++reconnects_;
      s.pause = options_.first_retry;
      s.logged_failure = false;
      LOG_INFO("RDMA connection to %s made: %s", s.link.name.c_str(), s.conn->Describe().c_str());
      continue;
    }
    s.next_try = Clock::now() + s.pause;
    due = std::min(due, s.next_try);
    if (!s.logged_failure)
      LOG_WARN("RDMA connection to %s: %s; HTTP meanwhile, retrying with back-off up to %.1f s",
               s.link.name.c_str(), made.error().message.c_str(),
               static_cast<double>(options_.max_retry.count()) / 1000);
    else
      LOG_DEBUG("RDMA connection to %s: %s; next try in %lld ms", s.link.name.c_str(),
                made.error().message.c_str(), static_cast<long long>(s.pause.count()));
    s.logged_failure = true;
    s.pause = std::min(s.pause * 2, options_.max_retry);
  }
  return due;
}

}  // namespace s3rdmafs::fetch
