// A set of disjoint byte ranges [begin, end): which bytes of a staged file
// are present locally (or were dropped from it). Adjacent and overlapping ranges merge. Not
// thread-safe.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <utility>
#include <vector>

namespace s3rdmafs::fs {

class ExtentSet {
 public:
  // Adds [a, b); returns how many bytes were not in the set before.
  uint64_t Add(uint64_t a, uint64_t b) {
    if (a >= b) return 0;
    const uint64_t added = (b - a) - Covered(a, b);
    auto it = map_.upper_bound(a);
    if (it != map_.begin() && std::prev(it)->second >= a) --it;
    while (it != map_.end() && it->first <= b) {
      a = std::min(a, it->first);
      b = std::max(b, it->second);
      it = map_.erase(it);
    }
    map_.emplace(a, b);
    return added;
  }

  // Removes everything at or after `n`; returns the bytes removed.
  uint64_t TruncateAt(uint64_t n) {
    uint64_t removed = 0;
    auto it = map_.lower_bound(n);
    if (it != map_.begin() && std::prev(it)->second > n) {
      auto p = std::prev(it);
      removed += p->second - n;
      p->second = n;
    }
    while (it != map_.end()) {
      removed += it->second - it->first;
      it = map_.erase(it);
    }
    return removed;
  }

  // Removes [a, b); returns the bytes removed.
  uint64_t Remove(uint64_t a, uint64_t b) {
    if (a >= b) return 0;
    const uint64_t removed = Covered(a, b);
    auto it = map_.upper_bound(a);
    if (it != map_.begin() && std::prev(it)->second > a) --it;
    while (it != map_.end() && it->first < b) {
      auto [x, y] = *it;
      it = map_.erase(it);
      if (x < a) map_.emplace(x, a);
      if (y > b) it = map_.emplace(b, y).first;
    }
    return removed;
  }

  // Bytes of [a, b) in the set.
  uint64_t Covered(uint64_t a, uint64_t b) const {
    uint64_t n = 0;
    auto it = map_.upper_bound(a);
    if (it != map_.begin()) --it;
    for (; it != map_.end() && it->first < b; ++it)
      if (it->second > a) n += std::min(b, it->second) - std::max(a, it->first);
    return n;
  }

  // The sub-ranges of [a, b) not in the set, in order.
  std::vector<std::pair<uint64_t, uint64_t>> Gaps(uint64_t a, uint64_t b) const {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    uint64_t at = a;
    auto it = map_.upper_bound(a);
    if (it != map_.begin()) --it;
    for (; it != map_.end() && it->first < b && at < b; ++it) {
      if (it->second <= at) continue;
      if (it->first > at) out.emplace_back(at, std::min(b, it->first));
      at = std::max(at, it->second);
    }
    if (at < b) out.emplace_back(at, b);
    return out;
  }

  uint64_t bytes() const {
    uint64_t n = 0;
    for (auto& [a, b] : map_) n += b - a;
    return n;
  }
  void clear() { map_.clear(); }

 private:
  std::map<uint64_t, uint64_t> map_;  // begin -> end
};

}  // namespace s3rdmafs::fs
