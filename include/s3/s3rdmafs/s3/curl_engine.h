// One libcurl multi handle driven by one thread. Connections are reused across
// requests (the multi handle's connection cache); at most `max_in_flight`
// requests run at once, the rest wait in FIFO order. Response bodies of 2xx
// answers can be written straight into caller memory (scatter spans), so a
// ranged GET lands in cache blocks with one copy (socket -> block). Over
// plain HTTP those GETs skip curl (PlainHttp, same thread): the socket is
// read straight into the spans, so that one copy is the kernel's.
//
// Thread-safety: Submit/After may be called from any thread. Callbacks run on
// the engine thread and must not block. Destruction cancels what is pending.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/file_region.h"
#include "s3rdmafs/s3/sigv4.h"

namespace s3rdmafs::s3 {

class PlainHttp;

// Which budget of in-flight requests a request spends: object bytes, or
// the small requests that stat, lookup and readdir wait on, so that those
// never queue behind a full pipe of data transfers.
enum class Lane : uint8_t { kData, kMetadata };

struct HttpRequest {
  Lane lane = Lane::kData;
  std::string method = "GET";
  std::string url;
  HeaderList headers;
  std::vector<std::span<std::byte>> sink;  // 2xx body lands here when non-empty
  std::string body;                        // request body (small: handshakes, XML)
  // PUT bodies sent from caller memory without a copy (the caller keeps it
  // alive until the callback). A PUT always sends a Content-Length, 0 included.
  std::vector<std::span<const std::byte>> upload;
  FileRegion upload_file;  // instead of `upload`: pread as curl asks for bytes
};

struct HttpResponse {
  int status = 0;
  HeaderList headers;  // names lowercased
  std::string body;    // non-sink bodies (XML, errors)
  uint64_t sink_bytes = 0;
  const std::string* Header(std::string_view lowercase_name) const;
};

class CurlEngine {
 public:
  struct Options {
    uint32_t max_in_flight = 32;           // data lane
    uint32_t max_metadata_in_flight = 16;  // metadata lane, on top
    uint64_t connect_timeout_ms = 5000;
    uint64_t low_speed_timeout_ms = 30000;
    std::string ca_bundle;
    // Ranged GETs over plain HTTP received straight into the spans (PlainHttp).
    bool direct_receive = true;
  };
  using Callback = std::function<void(Result<HttpResponse>)>;

  explicit CurlEngine(Options options);
  ~CurlEngine();
  CurlEngine(const CurlEngine&) = delete;
  CurlEngine& operator=(const CurlEngine&) = delete;

  void Submit(HttpRequest request, Callback done);
  // Stops the engine: every transfer queued, running or waiting out a retry
  // back-off is called back as kCancelled, and later Submits are refused
  // (called back at once). Idempotent; the destructor calls it.
  void Stop();
  // Runs `fn` on the engine thread after `delay` (retry back-off timers).
  void After(std::chrono::milliseconds delay, std::function<void()> fn);

  // Request latency (submit to completion) per method, Prometheus-style
  // cumulative buckets.
  static constexpr std::array<double, 12> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,   0.25,   0.5,   1,    2.5,   10};
  static constexpr std::array<const char*, 5> kMethods = {"GET", "PUT", "HEAD", "POST", "DELETE"};
  struct Latency {
    std::array<uint64_t, kLatencyBounds.size()> buckets{};  // count <= bound (cumulative)
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  struct Stats {
    std::array<Latency, kMethods.size()> latency{};
    uint64_t requests = 0;
    uint64_t bytes_received = 0;
    uint64_t bytes_sent = 0;
    uint32_t in_flight = 0;
    uint32_t queued = 0;
    uint64_t direct_receives = 0;     // GETs that took the PlainHttp path
    uint64_t direct_connections = 0;  // connections it opened
  };
  Stats GetStats() const;

  struct Transfer;  // one request in flight (defined in the .cc)

 private:
  struct Timer {
    std::chrono::steady_clock::time_point when;
    std::function<void()> fn;
  };
  void Loop();
  void StartQueued();
  void Finish(Transfer* t, int curl_code);
  void FinishPlain(Transfer* t, Result<void> result);
  // Takes `t` out of the running set and counts it; the caller calls back.
  std::unique_ptr<Transfer> Retire(Transfer* t);

  Options options_;
  void* multi_ = nullptr;  // CURLM*, kept opaque so users need not include curl.h
  std::thread thread_;
  std::mutex stop_mu_;  // one joiner
  mutable std::mutex mu_;
  bool stopping_ = false;                           // guarded by mu_
  std::deque<std::unique_ptr<Transfer>> queue_[2];  // by Lane; guarded by mu_
  std::vector<Timer> timers_;                       // guarded by mu_
  // Owned by the engine thread only:
  std::vector<std::unique_ptr<Transfer>> running_;
  uint32_t running_by_lane_[2] = {0, 0};  // engine thread only
  std::vector<void*> idle_handles_;
  std::unique_ptr<PlainHttp> plain_;  // engine thread only; null when off
  Stats stats_;                       // guarded by mu_
};

}  // namespace s3rdmafs::s3
