#include "stats_writer.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace s3rdmafs::daemon {

namespace {

// Prometheus text exposition: a HELP and TYPE line per family, then samples.
class Exposition {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, double v) {
    char num[64];
    if (v == static_cast<double>(static_cast<uint64_t>(v)))
      snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(v));
    else
      snprintf(num, sizeof num, "%.6g", v);
    out_ += name + labels + " " + num + "\n";
  }
  // A family of one sample without labels.
  void Single(const char* name, const char* type, const char* help, double v) {
    Family(name, type, help);
    Sample(name, "", v);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

uint64_t RssBytes() {
  long pages = 0, resident = 0;
  if (FILE* f = fopen("/proc/self/statm", "re")) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

std::string RenderStats(const Daemon& d) {
  Exposition e;
  const fetch::TransportCounters& t = d.counters;
  s3::CurlEngine::Stats http = d.engine->GetStats();
  cache::CacheStats c = d.cache->Stats();
  e.Family(
      "s3rdmafs_data_bytes_total", "counter",
      "Bytes read into the cache by the RDMA path, by transport (RDMA WRITE or HTTP fallback)");
  e.Sample("s3rdmafs_data_bytes_total", "{transport=\"rdma\"}", t.bytes_rdma.load());
  e.Sample("s3rdmafs_data_bytes_total", "{transport=\"http_fallback\"}", t.bytes_http.load());
  e.Family("s3rdmafs_upload_bytes_total", "counter",
           "Upload bodies sent by the RDMA path, by transport (RDMA READ or HTTP)");
  e.Sample("s3rdmafs_upload_bytes_total", "{transport=\"rdma\"}", t.bytes_rdma_sent.load());
  e.Sample("s3rdmafs_upload_bytes_total", "{transport=\"http_fallback\"}",
           t.bytes_http_sent.load());
  e.Single("s3rdmafs_http_bytes_received_total", "counter", "Bytes received over HTTP(S)",
           http.bytes_received);
  e.Single("s3rdmafs_http_bytes_sent_total", "counter", "Request bodies sent over HTTP(S)",
           http.bytes_sent);
  e.Single("s3rdmafs_http_requests_total", "counter", "HTTP requests started", http.requests);
  e.Single("s3rdmafs_http_direct_receives_total", "counter",
           "Ranged GETs read from the socket straight into cache blocks (s3.direct_receive)",
           http.direct_receives);
  e.Single("s3rdmafs_http_direct_connections_total", "counter",
           "Connections opened by the direct-receive path (kept alive between GETs)",
           http.direct_connections);
  e.Single("s3rdmafs_http_in_flight", "gauge", "HTTP requests in flight now", http.in_flight);
  e.Single("s3rdmafs_http_queued", "gauge",
           "HTTP requests waiting for a slot (s3.max_in_flight, s3.max_metadata_in_flight)",
           http.queued);
  e.Family("s3rdmafs_request_duration_seconds", "histogram",
           "S3 request latency, submit to completion, by method");
  for (size_t m = 0; m < s3::CurlEngine::kMethods.size(); ++m) {
    const auto& l = http.latency[m];
    std::string method = std::string("method=\"") + s3::CurlEngine::kMethods[m] + "\"";
    for (size_t b = 0; b < s3::CurlEngine::kLatencyBounds.size(); ++b) {
      char le[32];
      snprintf(le, sizeof le, "%g", s3::CurlEngine::kLatencyBounds[b]);
      e.Sample("s3rdmafs_request_duration_seconds_bucket", "{" + method + ",le=\"" + le + "\"}",
               l.buckets[b]);
    }
    e.Sample("s3rdmafs_request_duration_seconds_bucket", "{" + method + ",le=\"+Inf\"}", l.count);
    e.Sample("s3rdmafs_request_duration_seconds_sum", "{" + method + "}", l.sum_seconds);
    e.Sample("s3rdmafs_request_duration_seconds_count", "{" + method + "}", l.count);
  }
  e.Family("s3rdmafs_request_errors_total", "counter",
           "S3 requests that failed after their retries, by cause");
  for (Errc code :
       {Errc::kAccessDenied, Errc::kNoSuchBucket, Errc::kNoSuchKey, Errc::kNoSuchUpload,
        Errc::kPreconditionFailed, Errc::kSlowDown, Errc::kInvalidRange, Errc::kServerError,
        Errc::kBadRequest, Errc::kConnection, Errc::kTimedOut, Errc::kProtocol})
    e.Sample("s3rdmafs_request_errors_total", std::string("{cause=\"") + ErrcName(code) + "\"}",
             d.store->failures(code));
  e.Single("s3rdmafs_s3_retries_total", "counter", "S3 requests retried", d.store->retries());
  e.Single("s3rdmafs_s3_endpoint_failovers_total", "counter",
           "S3 requests sent to another endpoint because theirs did not answer",
           d.store->failovers());
  e.Family("s3rdmafs_s3_requests_total", "counter",
           "S3 requests sent (retries included), by operation");
  for (size_t k = 0; k < s3::S3Client::kRequestKinds.size(); ++k)
    e.Sample("s3rdmafs_s3_requests_total",
             std::string("{op=\"") + s3::S3Client::kRequestKinds[k] + "\"}", d.store->requests(k));
  e.Family("s3rdmafs_rdma_fallbacks_total", "counter", "RDMA requests redone over HTTP, by cause");
  e.Sample("s3rdmafs_rdma_fallbacks_total", "{cause=\"declined\"}", t.fallbacks_declined.load());
  e.Sample("s3rdmafs_rdma_fallbacks_total", "{cause=\"failed\"}", t.fallbacks_failed.load());
  e.Single("s3rdmafs_rdma_connections_retired_total", "counter",
           "RDMA connections retired after a lost reply whose window could not be fenced alone",
           t.connections_retired.load());
  e.Single("s3rdmafs_rdma_windows_fenced_total", "counter",
           "RDMA requests without a reply whose memory window alone was invalidated",
           t.windows_fenced.load());
  e.Single("s3rdmafs_rdma_connected", "gauge",
           "RDMA connections up now (1 per RDMA endpoint; 0: HTTP only)",
           d.rdma ? d.rdma->connected() : 0);
  e.Single("s3rdmafs_rdma_reconnects_total", "counter",
           "RDMA connections made in the background after one ended (or failed at mount)",
           d.rdma ? d.rdma->reconnects() : 0);
  if (d.fs) {
    const fs::StreamStats st = d.fs->streamed();
    e.Single("s3rdmafs_streamed_reads_total", "counter",
             "GETs whose body went from the socket to direct_io readers by splice "
             "(fuse.splice_reads)",
             st.opened);
    e.Single("s3rdmafs_streamed_bytes_total", "counter",
             "Bytes replied to direct_io readers by splice, past the cache", st.bytes);
    e.Single("s3rdmafs_streamed_failures_total", "counter",
             "Streamed GETs given up (a cut, a deadline, an unexpected answer): their readers "
             "went on through the cache",
             st.failures);
  }
  e.Single("s3rdmafs_cache_hits_total", "counter", "Cache block lookups that found the block",
           c.hits);
  e.Single("s3rdmafs_cache_misses_total", "counter", "Cache block lookups that had to fetch",
           c.misses);
  e.Single("s3rdmafs_cache_hit_ratio", "gauge", "hits / (hits + misses) since start",
           c.hits + c.misses ? static_cast<double>(c.hits) / (c.hits + c.misses) : 0);
  e.Single("s3rdmafs_cache_evictions_total", "counter", "Cache blocks evicted", c.evictions);
  e.Single("s3rdmafs_cache_held_evictions_total", "counter",
           "Of those, blocks a sequential stream still wanted, evicted after it stalled "
           "(cache too small for the streams)",
           c.held_evictions);
  e.Single("s3rdmafs_cache_fill_failures_total", "counter", "Cache fills that failed", c.failures);
  e.Family("s3rdmafs_cache_blocks", "gauge", "Cache blocks by state");
  e.Sample("s3rdmafs_cache_blocks", "{state=\"free\"}", c.blocks_free);
  e.Sample("s3rdmafs_cache_blocks", "{state=\"evictable\"}", c.blocks_evictable);
  e.Sample("s3rdmafs_cache_blocks", "{state=\"held\"}", c.blocks_held);
  e.Sample("s3rdmafs_cache_blocks", "{state=\"pinned\"}",
           c.blocks_total - c.blocks_free - c.blocks_evictable - c.blocks_held);
  e.Family("s3rdmafs_readahead_blocks_total", "counter",
           "Read-ahead blocks by outcome: read by a reader, evicted unread, or not fetched "
           "(no room within read-ahead's half of the cache)");
  e.Sample("s3rdmafs_readahead_blocks_total", "{outcome=\"used\"}", c.prefetch_used);
  e.Sample("s3rdmafs_readahead_blocks_total", "{outcome=\"wasted\"}", c.prefetch_wasted);
  e.Sample("s3rdmafs_readahead_blocks_total", "{outcome=\"refused\"}", c.prefetch_refused);
  if (d.write_buffers) {
    e.Family("s3rdmafs_write_buffers", "gauge", "Write part buffers by state");
    e.Sample("s3rdmafs_write_buffers", "{state=\"free\"}", d.write_buffers->free_count());
    e.Sample("s3rdmafs_write_buffers", "{state=\"busy\"}",
             d.write_buffers->total() - d.write_buffers->free_count());
  }
  e.Family("s3rdmafs_memory_bytes", "gauge",
           "Memory: the registered arena (cache + write buffers), staged bytes on disk, RSS");
  e.Sample("s3rdmafs_memory_bytes", "{kind=\"arena\"}", d.arena->size());
  e.Sample("s3rdmafs_memory_bytes", "{kind=\"staging_disk\"}", d.fs ? d.fs->staging_bytes() : 0);
  e.Sample("s3rdmafs_memory_bytes", "{kind=\"rss\"}", RssBytes());
  e.Single("s3rdmafs_inodes", "gauge",
           "Inodes known now (bounded by metadata.max_inodes and metadata.idle_forget)",
           d.fs ? d.fs->inodes().size() : 0);
  return e.Take();
}

StatsWriter::StatsWriter(const Daemon* daemon, std::string path)
    : daemon_(daemon), path_(std::move(path)) {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      WriteOnce();
      lock.lock();
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
    }
  });
}

StatsWriter::~StatsWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  WriteOnce();
}

void StatsWriter::WriteOnce() {
  std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return;
    out << RenderStats(*daemon_);
  }
  std::rename(tmp.c_str(), path_.c_str());
}

}  // namespace s3rdmafs::daemon
