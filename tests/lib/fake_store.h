// An in-memory ObjectStore for unit tests: deterministic "ramp" bodies
// (byte i of an object is (i * 7 + seed) % 251, a prime, so an off-by-N shows
// in the data), real prefix/delimiter/continuation semantics, and failure
// injection. Objects written through the interface keep their real bytes and
// metadata; multipart uploads follow S3's rules (parts ascend, every part but
// the last >= 5 MiB, Complete publishes atomically). Callbacks run inline on
// the caller's thread.
#pragma once

#include <unistd.h>

#include <algorithm>
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
  using s3::ObjectStore::Put;
  void Put(const std::string& key, uint64_t size, uint64_t seed = 1) {
    std::lock_guard lock(mu_);
    objects_[key] = {size, seed, "\"etag-" + std::to_string(++etag_seq_) + "\"", {}, false, {}};
  }
  // An object with these bytes and x-amz-meta-* (as another tool wrote it).
  void PutWithMeta(const std::string& key, const std::string& data, s3::Metadata meta) {
    std::lock_guard lock(mu_);
    objects_[key] = {data.size(), 0,    "\"etag-" + std::to_string(++etag_seq_) + "\"",
                     data,        true, std::move(meta)};
  }
  // The bytes of an object (ramp or stored), for assertions.
  std::string Bytes(const std::string& key) {
    std::lock_guard lock(mu_);
    const Object& o = objects_.at(key);
    if (o.has_data) return o.data;
    std::string out(o.size, '\0');
    for (uint64_t i = 0; i < o.size; ++i) out[i] = static_cast<char>(RampByte(o.seed, i));
    return out;
  }
  s3::Metadata MetaOf(const std::string& key) {
    std::lock_guard lock(mu_);
    return objects_.at(key).meta;
  }
  bool Has(const std::string& key) {
    std::lock_guard lock(mu_);
    return objects_.count(key) > 0;
  }
  size_t open_uploads() {
    std::lock_guard lock(mu_);
    return uploads_.size();
  }
  std::atomic<int> fail_parts{0};  // the next N UploadParts fail with kServerError
  std::atomic<uint64_t> puts{0}, parts{0}, copied_parts{0}, copies{0}, deletes{0};
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
  std::atomic<uint64_t> gets{0}, heads{0}, lists{0}, bytes{0}, head_with_bodies{0};

  void HeadAsync(const std::string& key,
                 std::function<void(Result<s3::ObjectInfo>)> done) override {
    ++heads;
    if (int f = fail_all.load()) return done(MakeError(static_cast<Errc>(f - 1), "injected"));
    std::lock_guard lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return done(MakeError(Errc::kNoSuchKey, "no such key", 404));
    s3::ObjectInfo info{key, it->second.size, 1000000000, it->second.etag, it->second.meta, true};
    done(std::move(info));
  }

  void HeadWithBodyAsync(const std::string& key, std::span<std::byte> into,
                         std::function<void(Result<HeadWithBody>)> done) override {
    ++head_with_bodies;
    if (int f = fail_all.load()) return done(MakeError(static_cast<Errc>(f - 1), "injected"));
    Object obj;
    {
      std::lock_guard lock(mu_);
      auto it = objects_.find(key);
      if (it == objects_.end()) return done(MakeError(Errc::kNoSuchKey, "no such key", 404));
      obj = it->second;
    }
    if (obj.size == 0) return done(MakeError(Errc::kInvalidRange, "range of an empty object", 416));
    HeadWithBody h;
    h.info = {key, obj.size, 1000000000, obj.etag, obj.meta, true};
    h.bytes = std::min<uint64_t>(into.size(), obj.size);
    for (uint64_t pos = 0; pos < h.bytes; ++pos)
      into[pos] = obj.has_data ? static_cast<std::byte>(obj.data[pos])
                               : static_cast<std::byte>(RampByte(obj.seed, pos));
    bytes += h.bytes;
    done(std::move(h));
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
        page.objects.push_back({key, it->second.size, 1000000000, it->second.etag, {}, false});
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
      for (auto& b : span)
        b = obj.has_data ? static_cast<std::byte>(obj.data[pos++])
                         : static_cast<std::byte>(RampByte(obj.seed, pos++));
    bytes += req.length;
    done(s3::GetResult{req.length, obj.etag});
  }

  void PutAsync(s3::PutRequest req, std::function<void(Result<std::string>)> done) override {
    if (int f = fail_all.load()) return done(MakeError(static_cast<Errc>(f - 1), "injected"));
    std::string body;
    for (auto& span : req.body)
      body.append(reinterpret_cast<const char*>(span.data()), span.size());
    if (!req.body_file.empty()) {  // read now, on whichever thread completes (as curl does)
      body.resize(req.body_file.length);
      ssize_t got = pread(req.body_file.fd, body.data(), body.size(),
                          static_cast<off_t>(req.body_file.offset));
      if (got < 0) return done(MakeError(Errc::kIo, "fake: pread of the body failed"));
      std::fill(body.begin() + got, body.end(), '\0');
    }
    std::lock_guard lock(mu_);
    std::string etag = "\"etag-" + std::to_string(++etag_seq_) + "\"";
    if (!req.upload_id.empty()) {
      ++parts;
      if (fail_parts.load() > 0 && fail_parts.fetch_sub(1) > 0)
        return done(MakeError(Errc::kServerError, "injected part failure", 500));
      auto it = uploads_.find(req.upload_id);
      if (it == uploads_.end()) return done(MakeError(Errc::kNoSuchUpload, "NoSuchUpload", 404));
      it->second.parts[req.part_number] = {body, etag};
      return done(etag);
    }
    if (!Holds(req.key, req.condition))
      return done(MakeError(Errc::kPreconditionFailed, "412", 412));
    ++puts;
    objects_[req.key] = {body.size(), 0, etag, body, true, req.meta};
    done(etag);
  }

  // A conditional write's condition, against the objects now (mu_ held).
  bool Holds(const std::string& key, const s3::WriteCondition& c) {
    auto it = objects_.find(key);
    if (c.if_none_match && it != objects_.end()) return false;
    if (!c.if_match.empty() && (it == objects_.end() || it->second.etag != c.if_match))
      return false;
    return true;
  }

  void CreateUploadAsync(const std::string& key, const s3::Metadata& meta,
                         std::function<void(Result<std::string>)> done) override {
    if (int f = fail_all.load()) return done(MakeError(static_cast<Errc>(f - 1), "injected"));
    std::lock_guard lock(mu_);
    std::string id = "upload-" + std::to_string(++etag_seq_);
    uploads_[id] = {key, meta, {}};
    done(id);
  }

  void CopyPartAsync(const s3::CopyPartRequest& req,
                     std::function<void(Result<std::string>)> done) override {
    std::string bytes;
    {
      std::lock_guard lock(mu_);
      auto it = objects_.find(req.source_key);
      if (it == objects_.end()) return done(MakeError(Errc::kNoSuchKey, "no such key", 404));
      if (!req.source_if_match.empty() && req.source_if_match != it->second.etag)
        return done(MakeError(Errc::kPreconditionFailed, "etag changed", 412));
    }
    bytes = Bytes(req.source_key).substr(req.offset, req.length);
    std::lock_guard lock(mu_);
    auto it = uploads_.find(req.upload_id);
    if (it == uploads_.end()) return done(MakeError(Errc::kNoSuchUpload, "NoSuchUpload", 404));
    ++copied_parts;
    std::string etag = "\"etag-" + std::to_string(++etag_seq_) + "\"";
    it->second.parts[req.part_number] = {bytes, etag};
    done(etag);
  }

  void CompleteUploadAsync(const std::string& key, const std::string& upload_id,
                           const std::vector<s3::CompletedPart>& list,
                           const s3::WriteCondition& condition,
                           std::function<void(Result<std::string>)> done) override {
    std::lock_guard lock(mu_);
    auto it = uploads_.find(upload_id);
    if (it == uploads_.end() || it->second.key != key)
      return done(MakeError(Errc::kNoSuchUpload, "NoSuchUpload", 404));
    if (!Holds(key, condition)) return done(MakeError(Errc::kPreconditionFailed, "412", 412));
    std::string body;
    for (size_t i = 0; i < list.size(); ++i) {
      auto p = it->second.parts.find(list[i].number);
      if ((i && list[i].number <= list[i - 1].number) || p == it->second.parts.end() ||
          p->second.etag != list[i].etag)
        return done(MakeError(Errc::kBadRequest, "InvalidPart", 400));
      if (i + 1 < list.size() && p->second.data.size() < (5u << 20))
        return done(MakeError(Errc::kBadRequest, "EntityTooSmall", 400));
      body += p->second.data;
    }
    std::string etag =
        "\"etag-" + std::to_string(++etag_seq_) + "-" + std::to_string(list.size()) + "\"";
    objects_[key] = {body.size(), 0, etag, body, true, it->second.meta};
    uploads_.erase(it);
    done(etag);
  }

  void AbortUploadAsync(const std::string&, const std::string& upload_id,
                        std::function<void(Result<void>)> done) override {
    std::lock_guard lock(mu_);
    uploads_.erase(upload_id);
    done({});
  }

  void CopyAsync(const std::string& from, const std::string& if_match, const std::string& to,
                 const s3::Metadata* replace,
                 std::function<void(Result<std::string>)> done) override {
    ++copies;
    std::string bytes;
    s3::Metadata meta;
    {
      std::lock_guard lock(mu_);
      auto it = objects_.find(from);
      if (it == objects_.end()) return done(MakeError(Errc::kNoSuchKey, "no such key", 404));
      if (!if_match.empty() && if_match != it->second.etag)
        return done(MakeError(Errc::kPreconditionFailed, "etag changed", 412));
      meta = replace ? *replace : it->second.meta;
    }
    bytes = Bytes(from);
    std::lock_guard lock(mu_);
    std::string etag = "\"etag-" + std::to_string(++etag_seq_) + "\"";
    objects_[to] = {bytes.size(), 0, etag, bytes, true, meta};
    done(etag);
  }

  void DeleteAsync(const std::string& key, std::function<void(Result<void>)> done) override {
    ++deletes;
    if (int f = fail_all.load()) return done(MakeError(static_cast<Errc>(f - 1), "injected"));
    std::lock_guard lock(mu_);
    objects_.erase(key);
    done({});
  }

 private:
  struct Object {
    uint64_t size = 0;
    uint64_t seed = 0;
    std::string etag;
    std::string data;
    bool has_data = false;
    s3::Metadata meta;
  };
  struct Part {
    std::string data, etag;
  };
  struct Upload {
    std::string key;
    s3::Metadata meta;
    std::map<uint32_t, Part> parts;
  };
  std::mutex mu_;
  std::map<std::string, Object> objects_;
  std::map<std::string, Upload> uploads_;
  int etag_seq_ = 0;
};

}  // namespace s3rdmafs::fakes
