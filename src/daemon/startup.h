// Composition root helpers: building the object graph from a Config and
// checking the endpoint before mounting.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "s3rdmafs/cache/block_cache.h"
#include "s3rdmafs/config/config.h"
#include "s3rdmafs/fetch/range_fetcher.h"
#include "s3rdmafs/fetch/rdma_links.h"
#include "s3rdmafs/fetch/rdma_range_fetcher.h"
#include "s3rdmafs/fs/filesystem.h"
#include "s3rdmafs/mem/arena.h"
#include "s3rdmafs/mem/slot_pool.h"
#include "s3rdmafs/rdma/rc_connection.h"
#include "s3rdmafs/s3/curl_engine.h"
#include "s3rdmafs/s3/s3_client.h"

namespace s3rdmafs::daemon {

// Everything the mount owns, declared in start order; members are destroyed
// in reverse, so the filesystem goes before the cache and the HTTP engine
// (cancelling in-flight fetches) before the arena their buffers point into.
struct Daemon {
  std::unique_ptr<mem::Arena> arena;
  std::unique_ptr<s3::CurlEngine> engine;
  std::unique_ptr<s3::S3Client> store;
  std::unique_ptr<cache::BlockCache> cache;      // the arena's first cache.size bytes
  std::unique_ptr<mem::SlotPool> write_buffers;  // the rest: write part buffers
  // RC connections (one, or one per S3 endpoint) or the DC target, and the
  // thread that remakes them; null when HTTP only.
  std::shared_ptr<fetch::RdmaLinks> rdma;
  fetch::TransportCounters counters;
  std::unique_ptr<fetch::RangeFetcher> http_fetcher;
  std::unique_ptr<fetch::RangeFetcher> rdma_fetcher;  // RDMA, HTTP fallback; null when HTTP only
  std::unique_ptr<fetch::PartUploader> http_uploader;
  std::unique_ptr<fetch::PartUploader> rdma_uploader;  // null when HTTP only
  std::unique_ptr<fs::Filesystem> fs;

  // The one owner of the shutdown order, called by the FUSE session after
  // its loop stopped taking requests (and by the destructor, if the mount
  // never served). Returns when no read reply is owed any more, or its
  // budget is spent. Idempotent.
  void Shutdown();
  ~Daemon();

 private:
  bool shut_down_ = false;
};

// Normalises "some/prefix" or "/some/prefix/" to "some/prefix/" ("" for none).
std::string NormalizePrefix(std::string_view prefix);

Result<std::unique_ptr<Daemon>> Build(const config::Config& config);

// Lists one key under the mount's prefix: proves the endpoint answers, the
// credentials are accepted and the bucket exists. The message says which
// of those failed and what to do.
Result<void> CheckEndpoint(const config::Config& config, s3::ObjectStore* store);

}  // namespace s3rdmafs::daemon
