#include "s3rdmafs/readahead/policy.h"

#include <algorithm>

namespace s3rdmafs::readahead {

Plan Policy::OnRead(uint64_t offset, uint64_t length, uint64_t file_size) {
  ++tick_;
  const uint64_t end = std::min(offset + length, file_size);
  Stream* s = nullptr;
  for (Stream& c : streams_) {
    uint64_t lo = c.next > config_.tolerance ? c.next - config_.tolerance : 0;
    uint64_t hi = c.next + std::max(config_.tolerance, c.window);
    if (offset >= lo && offset <= hi) {
      s = &c;
      break;
    }
  }
  if (!s) {
    Stream fresh;
    fresh.next = end;
    fresh.frontier = end;
    fresh.last_used = tick_;
    if (offset == 0) fresh.window = config_.initial;  // files are mostly read from the start
    if (streams_.size() < config_.max_streams) {
      streams_.push_back(fresh);
      s = &streams_.back();
    } else {
      s = &*std::min_element(
          streams_.begin(), streams_.end(),
          [](const Stream& a, const Stream& b) { return a.last_used < b.last_used; });
      *s = fresh;
    }
    if (s->window == 0) return {};
  } else {
    s->last_used = tick_;
    s->next = std::max(s->next, end);
    if (s->window == 0) s->window = config_.initial;  // second sequential read: a stream
  }
  s->frontier = std::max(s->frontier, s->next);
  Plan plan;
  plan.sequential = true;
  if (s->frontier >= file_size) return plan;
  // Plan only when the reader is within half a window of the frontier, so
  // requests go out in window-sized batches rather than block by block.
  if (s->frontier - s->next > s->window / 2) return plan;
  plan.begin = s->frontier;
  plan.end = std::min(file_size, s->next + s->window);
  if (plan.end <= plan.begin) return {.sequential = true};
  s->frontier = plan.end;
  s->window = std::min(config_.max, s->window * 2);
  return plan;
}

void Policy::Shortfall(const Plan& plan, uint64_t reached) {
  if (reached >= plan.end) return;
  for (Stream& s : streams_) {
    if (s.frontier != plan.end) continue;
    s.frontier = std::max(plan.begin, reached);
    s.window = std::max(config_.tolerance, s.window / 4);  // undo this plan's doubling, then halve
    return;
  }
}

}  // namespace s3rdmafs::readahead
