// An in-memory ObjectStore for unit tests: deterministic "ramp" bodies
// (byte i of an object is (i * 7 + seed) % 251, a prime, so an off-by-N shows
// in the data), real prefix/delimiter/continuation semantics, and failure
// injection. Callbacks run inline on the caller's thread.
#pragma once

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>

#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::fakes {

inline uint8_t RampByte(uint64_t seed, uint64_t i) {
  return static_cast<uint8_t>((i * 7 + seed) % 251);
}

class FakeStore : public s3::ObjectStore {
 public:
  void Put(const std::string& key, uint64_t size, uint64_t seed = 1) {
    std::lock_guard lock(mu_);
    objects_[key] = {size, seed, "\"etag-" + std::to_string(++etag_seq_) + "\""};
  }
  void Remove(const std::string& key) {
    std::lock_guard lock(mu_);
    objects_.erase(key);
  }
  std::string EtagOf(const std::string& key) {
    std::lock_guard lock(mu_);
    return objects_.at(key).etag;
  }

  std::atomic<int> fail_gets{0};  // the next N GETs fail with kConnection
  std::atomic<int> fail_all{0};   // while non-zero every call fails with this Errc + 1
  std::atomic<uint64_t> gets{0}, heads{0}, lists{0}, bytes{0};

  void HeadAsync(const std::string& key,
                 std::function<void(Result<s3::ObjectInfo>)> done) override {
    ++heads;
    if (int f = fail_all.load()) return done(MakeError(static_cast<Errc>(f - 1), "injected"));
    std::lock_guard lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return done(MakeError(Errc::kNoSuchKey, "no such key", 404));
    done(s3::ObjectInfo{key, it->second.size, 1000000000, it->second.etag});
  }

  void ListAsync(const s3::ListRequest& req,
                 std::function<void(Result<s3::ListPage>)> done) override {
    ++lists;
    if (int f = fail_all.load()) return done(MakeError(static_cast<Errc>(f - 1), "injected"));
    std::lock_guard lock(mu_);
    s3::ListPage page;
    std::string last;
    uint32_t n = 0;
    for (auto it = objects_.upper_bound(req.continuation_token); it != objects_.end(); ++it) {
      const std::string& key = it->first;
      if (key.compare(0, req.prefix.size(), req.prefix) != 0) continue;
      std::string entry = key;
      bool is_prefix = false;
      if (!req.delimiter.empty()) {
        size_t d = key.find(req.delimiter, req.prefix.size());
        if (d != std::string::npos) {
          entry = key.substr(0, d + req.delimiter.size());
          is_prefix = true;
          if (!page.common_prefixes.empty() && page.common_prefixes.back() == entry) continue;
          if (!req.continuation_token.empty() &&
              req.continuation_token.compare(0, entry.size(), entry) == 0)
            continue;
        }
      }
      if (n == req.max_keys) {
        page.next_token = last;
        break;
      }
      ++n;
      if (is_prefix) {
        page.common_prefixes.push_back(entry);
        last = entry + "\xff";  // skip the rest of this prefix
      } else {
        page.objects.push_back({key, it->second.size, 1000000000, it->second.etag});
        last = key;
      }
    }
    done(std::move(page));
  }

  void GetAsync(s3::GetRequest req, std::function<void(Result<s3::GetResult>)> done) override {
    ++gets;
    if (int f = fail_all.load()) return done(MakeError(static_cast<Errc>(f - 1), "injected"));
    if (fail_gets.load() > 0 && fail_gets.fetch_sub(1) > 0)
      return done(MakeError(Errc::kConnection, "injected connection reset"));
    Object obj;
    {
      std::lock_guard lock(mu_);
      auto it = objects_.find(req.key);
      if (it == objects_.end()) return done(MakeError(Errc::kNoSuchKey, "no such key", 404));
      obj = it->second;
    }
    if (!req.if_match.empty() && req.if_match != obj.etag)
      return done(MakeError(Errc::kPreconditionFailed, "etag changed", 412));
    if (req.offset + req.length > obj.size)
      return done(MakeError(Errc::kInvalidRange, "range", 416));
    uint64_t pos = req.offset;
    for (auto& span : req.into)
      for (auto& b : span) b = static_cast<std::byte>(RampByte(obj.seed, pos++));
    bytes += req.length;
    done(s3::GetResult{req.length, obj.etag});
  }

 private:
  struct Object {
    uint64_t size = 0;
    uint64_t seed = 0;
    std::string etag;
  };
  std::mutex mu_;
  std::map<std::string, Object> objects_;
  int etag_seq_ = 0;
};

}  // namespace s3rdmafs::fakes
