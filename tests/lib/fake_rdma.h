// A fake RDMA-S3 server for tests without a device: FakeRdmaStore answers
// RDMA GETs and PUTs over a FakeStore's objects the ways real servers do
// (docs/PROTOCOL.md, "How real servers decline or fail"), and FakeConnection
// is the TokenSource whose tokens name plain memory. Every answer comes on the
// store's own thread, as the real engine's completions do.
//
// A window stays reachable until it is closed (memory windows) or its
// connection is retired (a region-wide key), as the hardware decides: after a
// lost reply the fake makes one late write into the window and counts whether
// it landed or was refused.
#pragma once

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "fake_store.h"
#include "s3rdmafs/protocol/crc32c.h"
#include "s3rdmafs/rdma/token_source.h"
#include "s3rdmafs/s3/rdma_store.h"

namespace s3rdmafs::fakes {

class FakeConnection final : public rdma::TokenSource {
 public:
  // `windows`: a window per request, closed alone (RcConnection with memory
  // windows); else every token carries the region's key (DcTarget, or RC
  // without windows) and only retiring the connection fences a window.
  FakeConnection(uint64_t id, bool windows) : id_(id), windows_(windows) {}
  // "fake <connection> <window> <address> <size> <r|w>"
  Result<rdma::Window> Open(const void* addr, uint64_t size, rdma::Access access) override {
    if (retired_) return MakeError(Errc::kConnection, "fake connection retired");
    std::lock_guard lock(mu_);
    const uint64_t window = windows_ ? ++next_window_ : 0;
    if (windows_) open_.insert(window);
    char buf[128];
    std::snprintf(buf, sizeof buf, "fake %llu %llu %llx %llu %c",
                  static_cast<unsigned long long>(id_), static_cast<unsigned long long>(window),
                  static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(addr)),
                  static_cast<unsigned long long>(size),
                  access == rdma::Access::kServerWrites ? 'w' : 'r');
    return rdma::Window{buf, window};
  }
  bool Close(const rdma::Window& w) override {
    if (!windows_ || w.id == 0) return false;
    std::lock_guard lock(mu_);
    open_.erase(w.id);
    return true;
  }
  void Retire() override { retired_ = true; }
  bool retired() const override { return retired_; }
  bool Healthy() override { return !retired_ && !peer_gone_; }
  std::string Describe() const override { return "fake connection " + std::to_string(id_); }
  void PeerGone() { peer_gone_ = true; }
  // Whether the server can still reach a window: as the hardware decides.
  bool Reachable(uint64_t window) const {
    if (retired_) return false;
    if (window == 0) return true;
    std::lock_guard lock(mu_);
    return open_.count(window) != 0;
  }

 private:
  const uint64_t id_;
  const bool windows_;
  std::atomic<bool> retired_{false}, peer_gone_{false};
  mutable std::mutex mu_;
  uint64_t next_window_ = 0;  // guarded by mu_
  std::set<uint64_t> open_;   // guarded by mu_
};

class FakeRdmaStore final : public s3::RdmaStore {
 public:
  // How the server answers the next RDMA requests.
  enum class Answer {
    kRdma,               // moves the bytes by RDMA and replies x-amz-rdma-reply
    kDecline501,         // 501 NotImplemented (AIStor without RDMA)
    kInvalidRequest,     // 400 InvalidRequest to any token (RustFS)
    kBodyOverHttp,       // ignores the token and sends the body (Ceph RGW): GETs only
    kNoReply,            // no answer at all (a timeout); then one late write
    kConnectionUnknown,  // 501 RDMAConnectionUnknown (a restarted server)
    kServerError,        // 500 after RDMA was chosen: the reply is the fence
  };

  explicit FakeRdmaStore(FakeStore* objects) : objects_(objects), thread_([this] { Run(); }) {}
  ~FakeRdmaStore() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  std::shared_ptr<FakeConnection> Connect() {
    std::lock_guard lock(mu_);
    auto c = std::make_shared<FakeConnection>(++next_connection_, windows.load());
    connections_[next_connection_] = c;
    return c;
  }

  std::atomic<Answer> answer{Answer::kRdma};
  std::atomic<bool> windows{true};  // what connections made from now on do
  std::atomic<uint64_t> rdma_gets{0}, rdma_puts{0}, bytes_by_rdma{0}, bytes_as_body{0};
  std::atomic<uint64_t> late_writes_landed{0}, late_writes_refused{0};
  std::atomic<uint64_t> crc_mismatches{0}, wrong_access{0};

  size_t EndpointFor(std::string_view /*key*/, uint64_t /*offset*/) const override { return 0; }

  void GetRdmaAsync(const std::string& key, uint64_t offset, std::span<std::byte> window,
                    const std::string& if_match, const std::string& token,
                    std::function<void(Result<s3::RdmaReply>)> done, size_t /*endpoint*/) override {
    ++rdma_gets;
    const Answer a = answer.load();
    Post([=, this, done = std::move(done)] {
      auto target = Resolve(token);
      if (a == Answer::kNoReply) {
        done(MakeError(Errc::kTimedOut, "fake: no reply"));  // http_status 0
        return LateWrite(target);
      }
      if (auto declined = Declines(a)) return done(*declined);
      if (a == Answer::kServerError)
        return done(MakeError(Errc::kServerError, "fake: InternalError", 500));
      // RDMA (into the token's memory) or the HTTP body (into the window).
      std::span<std::byte> into = window;
      if (a == Answer::kRdma) {
        if (!target) return done(MakeError(Errc::kBadRequest, "fake: unusable token", 400));
        if (!target->writable) {  // the RDMA WRITE fails: a remote access error
          ++wrong_access;
          return done(MakeError(Errc::kServerError, "fake: RDMATransferFailed", 500));
        }
        into = target->memory;
        std::lock_guard lock(mu_);
        ++gets_by_connection_[target->connection.get()];
      }
      // Read apart from the store's own GET counters: those count plain GETs.
      if (!objects_->Has(key)) return done(MakeError(Errc::kNoSuchKey, "no such key", 404));
      const std::string etag = objects_->EtagOf(key), bytes = objects_->Bytes(key);
      if (!if_match.empty() && if_match != etag)
        return done(MakeError(Errc::kPreconditionFailed, "fake: etag changed", 412));
      if (offset + into.size() > bytes.size())
        return done(MakeError(Errc::kInvalidRange, "fake: range", 416));
      std::memcpy(into.data(), bytes.data() + offset, into.size());
      s3::RdmaReply reply;
      reply.bytes = into.size();
      reply.etag = etag;
      if (a == Answer::kBodyOverHttp) {
        reply.declined = true;
        reply.served_over_http = true;
        reply.why = "the server ignored x-amz-rdma-token";
        bytes_as_body += into.size();
      } else {
        bytes_by_rdma += into.size();
      }
      done(reply);
    });
  }

  void PutRdmaAsync(const s3::PutRequest& request, const std::string& token,
                    const std::string& crc32c, std::function<void(Result<s3::RdmaReply>)> done,
                    size_t /*endpoint*/) override {
    ++rdma_puts;
    Answer a = answer.load();
    // A server that ignores the token checks the checksum against the empty
    // body it got and refuses it (400 BadDigest): a decline, nothing stored.
    if (a == Answer::kBodyOverHttp) a = Answer::kInvalidRequest;
    Post([=, this, done = std::move(done)] {
      auto target = Resolve(token);
      if (a == Answer::kNoReply) {
        done(MakeError(Errc::kTimedOut, "fake: no reply"));
        return LateWrite(target);
      }
      if (auto declined = Declines(a)) return done(*declined);
      if (a == Answer::kServerError)
        return done(MakeError(Errc::kServerError, "fake: InternalError", 500));
      if (!target) return done(MakeError(Errc::kBadRequest, "fake: unusable token", 400));
      if (target->writable) ++wrong_access;  // a PUT's window must grant reading only
      if (protocol::Crc32cBase64(target->memory.data(), target->memory.size()) != crc32c) {
        ++crc_mismatches;
        return done(MakeError(Errc::kBadRequest, "fake: BadDigest", 400));
      }
      s3::PutRequest put = request;
      put.body = {target->memory};
      auto etag = objects_->Put(std::move(put));
      if (!etag) return done(tl::unexpected(etag.error()));
      bytes_by_rdma += target->memory.size();
      s3::RdmaReply reply;
      reply.bytes = target->memory.size();
      reply.etag = *etag;
      done(reply);
    });
  }

  // How many connections carried RDMA GETs.
  size_t connections_used() {
    std::lock_guard lock(mu_);
    return gets_by_connection_.size();
  }

  // Waits until every answer posted so far has been given.
  void Drain() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
  }

 private:
  struct Target {
    std::shared_ptr<FakeConnection> connection;
    uint64_t window = 0;
    std::span<std::byte> memory;
    bool writable = false;
  };

  // What the token names, if its connection still exists.
  std::optional<Target> Resolve(const std::string& token) {
    unsigned long long id = 0, window = 0, addr = 0, size = 0;
    char access = 0;
    if (std::sscanf(token.c_str(), "fake %llu %llu %llx %llu %c", &id, &window, &addr, &size,
                    &access) != 5)
      return std::nullopt;
    std::lock_guard lock(mu_);
    auto it = connections_.find(id);
    if (it == connections_.end()) return std::nullopt;
    auto c = it->second.lock();
    if (!c) return std::nullopt;
    return Target{
        c, window, {reinterpret_cast<std::byte*>(addr), static_cast<size_t>(size)}, access == 'w'};
  }

  static std::optional<s3::RdmaReply> Declines(Answer a) {
    s3::RdmaReply d;
    d.declined = true;
    switch (a) {
      case Answer::kDecline501:
        d.why = "fake: 501 NotImplemented";
        return d;
      case Answer::kInvalidRequest:
        d.why = "fake: 400 InvalidRequest";
        return d;
      case Answer::kConnectionUnknown:
        d.why = "fake: 501 RDMAConnectionUnknown";
        d.connection_unknown = true;
        return d;
      default:
        return std::nullopt;
    }
  }

  // A request whose reply was lost may still be acted on by the server: the
  // write lands unless its window was closed or its connection retired.
  void LateWrite(const std::optional<Target>& target) {
    if (!target || !target->connection->Reachable(target->window)) {
      ++late_writes_refused;
      return;
    }
    for (auto& b : target->memory) b = std::byte{0xEE};
    ++late_writes_landed;
  }

  void Post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(fn));
    }
    wake_.notify_one();
  }
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      fn();
      lock.lock();
      busy_ = false;
      if (queue_.empty()) idle_.notify_all();
    }
  }

  FakeStore* objects_;
  std::mutex mu_;
  std::condition_variable wake_, idle_;
  std::deque<std::function<void()>> queue_;                        // guarded by mu_
  bool busy_ = false, stop_ = false;                               // guarded by mu_
  uint64_t next_connection_ = 0;                                   // guarded by mu_
  std::map<uint64_t, std::weak_ptr<FakeConnection>> connections_;  // guarded by mu_
  std::map<const FakeConnection*, uint64_t> gets_by_connection_;   // guarded by mu_
  std::thread thread_;
};

}  // namespace s3rdmafs::fakes
