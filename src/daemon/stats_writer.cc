#include "stats_writer.h"

#include <cstdio>
#include <fstream>

namespace s3rdmafs::daemon {

std::string RenderStats(const Daemon& d) {
  std::string out;
  auto line = [&out](const char* name, const char* labels, uint64_t v) {
    out += name;
    out += labels;
    out += " " + std::to_string(v) + "\n";
  };
  const fetch::TransportCounters& t = d.counters;
  s3::CurlEngine::Stats http = d.engine->GetStats();
  cache::CacheStats c = d.cache->Stats();
  line("s3rdmafs_data_bytes_total", "{transport=\"rdma\"}", t.bytes_rdma.load());
  line("s3rdmafs_data_bytes_total", "{transport=\"http_fallback\"}", t.bytes_http.load());
  line("s3rdmafs_upload_bytes_total", "{transport=\"rdma\"}", t.bytes_rdma_sent.load());
  line("s3rdmafs_upload_bytes_total", "{transport=\"http_fallback\"}", t.bytes_http_sent.load());
  line("s3rdmafs_http_bytes_received_total", "", http.bytes_received);
  line("s3rdmafs_http_bytes_sent_total", "", http.bytes_sent);
  line("s3rdmafs_http_requests_total", "", http.requests);
  line("s3rdmafs_http_in_flight", "", http.in_flight);
  line("s3rdmafs_rdma_fallbacks_total", "{cause=\"declined\"}", t.fallbacks_declined.load());
  line("s3rdmafs_rdma_fallbacks_total", "{cause=\"failed\"}", t.fallbacks_failed.load());
  line("s3rdmafs_rdma_connections_retired_total", "", t.connections_retired.load());
  line("s3rdmafs_rdma_connected", "", d.rdma && !d.rdma->retired() ? 1 : 0);
  line("s3rdmafs_s3_retries_total", "", d.store->retries());
  line("s3rdmafs_cache_hits_total", "", c.hits);
  line("s3rdmafs_cache_misses_total", "", c.misses);
  line("s3rdmafs_cache_evictions_total", "", c.evictions);
  line("s3rdmafs_cache_fill_failures_total", "", c.failures);
  line("s3rdmafs_cache_blocks", "{state=\"free\"}", c.blocks_free);
  line("s3rdmafs_cache_blocks", "{state=\"evictable\"}", c.blocks_evictable);
  line("s3rdmafs_cache_blocks", "{state=\"pinned\"}",
       c.blocks_total - c.blocks_free - c.blocks_evictable);
  if (d.write_buffers) {
    line("s3rdmafs_write_buffers", "{state=\"free\"}", d.write_buffers->free_count());
    line("s3rdmafs_write_buffers", "{state=\"busy\"}",
         d.write_buffers->total() - d.write_buffers->free_count());
  }
  return out;
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
