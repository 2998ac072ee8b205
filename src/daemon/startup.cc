#include "startup.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <future>

#include "s3rdmafs/common/endpoint_list.h"
#include "s3rdmafs/common/log.h"
#include "s3rdmafs/rdma/dc_target.h"
#include "s3rdmafs/s3/credentials.h"

namespace s3rdmafs::daemon {

void Daemon::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // 1. Directory records still pending go out while the transports run.
  if (fs) fs->FlushMetadata(std::chrono::seconds(5));
  // 2. The reconnect thread uses the store, the engine and the arena.
  if (rdma) rdma->Stop();
  // 3. Every request in flight is called back, as cancelled; each read's
  //    reply goes out from there (an error the reader sees).
  if (engine) engine->Stop();
  // 4. Nothing of a read may call back once this returns: the session (and
  //    then the filesystem) may go.
  if (fs) {
    if (uint64_t owed = fs->Quiesce(std::chrono::seconds(30)))
      LOG_WARN("%llu reads still owe their reply at unmount; shutdown waits no longer",
               static_cast<unsigned long long>(owed));
  }
}

Daemon::~Daemon() {
  Shutdown();
  fs.reset();
  engine.reset();
  if (rdma)
    LOG_INFO(
        "transport totals: %llu bytes by RDMA, %llu by HTTP, %llu declined and %llu failed RDMA "
        "jobs",
        static_cast<unsigned long long>(counters.bytes_rdma.load()),
        static_cast<unsigned long long>(counters.bytes_http.load()),
        static_cast<unsigned long long>(counters.fallbacks_declined.load()),
        static_cast<unsigned long long>(counters.fallbacks_failed.load()));
  rdma_fetcher.reset();
  http_fetcher.reset();
  rdma_uploader.reset();
  http_uploader.reset();
  rdma.reset();  // deregisters the arena before it is unmapped
  store.reset();
  cache.reset();
  write_buffers.reset();
  arena.reset();
}

std::string NormalizePrefix(std::string_view p) {
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return p.empty() ? std::string() : std::string(p) + "/";
}

namespace {

// One RC connection to `where` (ADDR:PORT), bound by a handshake sent to S3
// endpoint `endpoint` (the server that owns that listener).
Result<std::shared_ptr<rdma::TokenSource>> ConnectRc(const std::string& where, size_t endpoint,
                                                     const rdma::RcOptions& options, Daemon& d) {
  size_t colon = where.rfind(':');
  std::string host = where.substr(0, colon);
  uint16_t port = config::ParsePort(where).value_or(0);  // Validate checked it
  s3::S3Client* store = d.store.get();
  auto conn = rdma::RcConnection::Connect(
      host, port, d.arena->base(), d.arena->size(),
      [store, endpoint](const std::string& body) -> Result<rdma::Handshake> {
        auto reply = store->RdmaConnect(body, endpoint);
        if (!reply) return tl::unexpected(reply.error());
        return rdma::ParseHandshakeReply(*reply);
      },
      options);
  if (!conn) return tl::unexpected(conn.error());
  if (options.memory_windows && !(*conn)->memory_windows())
    LOG_WARN("%s has no type 2 memory windows: tokens carry the region's key",
             (*conn)->device().c_str());
  return std::shared_ptr<rdma::TokenSource>(std::move(*conn));
}

// The mount's RDMA data path: the DC target, or one RC connection per
// rdma.endpoint (one for all, or one per S3 endpoint in its order). An
// endpoint whose connection fails reads over HTTP until the background
// reconnect makes it, unless RDMA is required. Null: no RDMA configured.
Result<std::shared_ptr<fetch::RdmaLinks>> ConnectRdma(const config::Config& c, Daemon& d) {
  std::vector<fetch::RdmaLinks::Link> links;
  if (c.rdma.transport == "dc") {
    rdma::DcOptions o;
    o.device = c.rdma.device;
    o.port = static_cast<int>(c.rdma.port);
    o.access_key = c.rdma.dc_access_key;
    o.suffixed_tokens = c.rdma.dc_suffixed_token;
    mem::Arena* arena = d.arena.get();
    links.push_back({"DC target", [o, arena]() -> Result<std::shared_ptr<rdma::TokenSource>> {
                       auto dc = rdma::DcTarget::Create(o, arena->base(), arena->size());
                       if (!dc) return tl::unexpected(dc.error());
                       return std::shared_ptr<rdma::TokenSource>(std::move(*dc));
                     }});
  } else {
    // Entry i belongs to S3 endpoint i; each of its rails (addresses) gets
    // rdma.connections connections.
    const auto entries = SplitEndpointList(c.rdma.endpoint);
    rdma::RcOptions o;
    o.memory_windows = c.rdma.memory_windows;
    for (size_t i = 0; i < entries.size(); ++i)
      for (const std::string& where : SplitRails(entries[i]))
        for (uint64_t k = 0; k < c.rdma.connections; ++k) {
          const std::string name =
              c.rdma.connections > 1 ? where + " #" + std::to_string(k + 1) : where;
          links.push_back(
              {name, [where, i, o, &d] { return ConnectRc(where, i, o, d); }, nullptr, i});
        }
  }
  if (links.empty()) return std::shared_ptr<fetch::RdmaLinks>();
  for (auto& link : links) {
    auto made = link.connect();
    if (made) {
      LOG_INFO("RDMA data path: %s (%s), arena registered", (*made)->Describe().c_str(),
               link.name.c_str());
      link.first = *made;
      continue;
    }
    const Error& e = made.error();
    if (c.rdma.required)
      return MakeError(e.code,
                       "RDMA is required but unavailable (" + link.name + "): " + e.message);
    LOG_WARN("RDMA UNAVAILABLE (%s): %s: %s over HTTP until a connection can be made",
             link.name.c_str(), e.message.c_str(),
             links.size() == 1 ? "reading" : "this endpoint's share goes");
  }
  fetch::RdmaLinks::Options o;
  o.first_retry = std::chrono::milliseconds(c.rdma.reconnect_min_ms);
  o.max_retry = std::chrono::milliseconds(c.rdma.reconnect_max_ms);
  return std::make_shared<fetch::RdmaLinks>(std::move(links), o);
}

}  // namespace

Result<std::unique_ptr<Daemon>> Build(const config::Config& c) {
  auto d = std::make_unique<Daemon>();
  s3::CredentialSources src;
  src.access_key = c.s3.access_key;
  src.secret_key = c.s3.secret_key;
  src.session_token = c.s3.session_token;
  src.profile = c.s3.profile;
  src.anonymous = c.s3.anonymous;
  src.getenv = [](const char* n) { return std::getenv(n); };
  auto creds = s3::ResolveCredentials(src);
  if (!creds) return tl::unexpected(creds.error());
  LOG_INFO("credentials from %s", creds->source.c_str());

  if (c.cache.prefault) {
    // A prefaulted arena larger than the free memory would bring the OOM
    // killer instead of an error message: refuse it here.
    uint64_t available_kib = 0;
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);)
      if (line.rfind("MemAvailable:", 0) == 0) available_kib = std::stoull(line.substr(13));
    if (available_kib && c.cache.size / 1024 > available_kib * 9 / 10)
      return MakeError(Errc::kNoSpace, "cache.size (" + std::to_string(c.cache.size >> 20) +
                                           " MiB) is more than 90% of the available memory (" +
                                           std::to_string(available_kib >> 10) +
                                           " MiB): lower cache.size");
  }
  // One arena, registered once: the page cache, then the write part buffers.
  const uint64_t write_bytes = c.write.enabled ? c.write.buffer_memory : 0;
  auto arena = mem::Arena::Create(c.cache.size + write_bytes, c.cache.hugepages, c.cache.prefault);
  if (!arena) return tl::unexpected(arena.error());
  d->arena = std::move(*arena);
  LOG_INFO("cache arena: %llu MiB (%s pages), %llu KiB blocks",
           static_cast<unsigned long long>(c.cache.size >> 20), d->arena->backing(),
           static_cast<unsigned long long>(c.cache.block_size >> 10));

  s3::CurlEngine::Options eo;
  eo.max_in_flight = static_cast<uint32_t>(c.s3.max_in_flight);
  eo.max_metadata_in_flight = static_cast<uint32_t>(c.s3.max_metadata_in_flight);
  eo.connect_timeout_ms = c.s3.connect_timeout_ms;
  eo.low_speed_timeout_ms = c.s3.low_speed_timeout_ms;
  eo.direct_receive = c.s3.direct_receive;
  // libcurl sends plain-HTTP requests through the proxy these name; the
  // direct path connects by itself, so it steps aside rather than bypass one.
  for (const char* proxy : {"http_proxy", "all_proxy", "ALL_PROXY"}) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): start-up, before any thread of ours
    const char* v = std::getenv(proxy);
    if (eo.direct_receive && v && *v) {
      LOG_INFO("s3.direct_receive off: %s is set, HTTP goes through libcurl and its proxy", proxy);
      eo.direct_receive = false;
    }
  }
  eo.ca_bundle = c.s3.ca_bundle;
  d->engine = std::make_unique<s3::CurlEngine>(eo);

  s3::S3ClientOptions so;
  so.endpoint = c.s3.endpoint;
  so.region = c.s3.region;
  so.bucket = c.s3.bucket;
  so.virtual_hosted = c.s3.addressing == config::Addressing::kVirtual;
  so.credentials = creds->credentials;
  so.max_retries = static_cast<uint32_t>(c.s3.max_retries);
  so.retry_base_delay_ms = c.s3.retry_base_delay_ms;
  so.retry_max_delay_ms = c.s3.retry_max_delay_ms;
  auto store = s3::S3Client::Create(so, d->engine.get());
  if (!store) return tl::unexpected(store.error());
  d->store = std::move(*store);

  d->cache = std::make_unique<cache::BlockCache>(d->arena->base(), c.cache.size,
                                                 static_cast<uint32_t>(c.cache.block_size));
  if (c.write.enabled)
    d->write_buffers = std::make_unique<mem::SlotPool>(d->arena->base() + c.cache.size, write_bytes,
                                                       c.write.part_size);
  d->http_fetcher = fetch::MakeHttpRangeFetcher(d->store.get());
  d->http_uploader = fetch::MakeHttpPartUploader(d->store.get());
  if (auto rdma = ConnectRdma(c, *d); !rdma)
    return tl::unexpected(rdma.error());
  else
    d->rdma = std::move(*rdma);
  if (d->rdma) {
    d->rdma_fetcher =
        fetch::MakeRdmaRangeFetcher(d->store.get(), d->rdma, d->http_fetcher.get(), &d->counters,
                                    std::chrono::milliseconds(c.rdma.declined_backoff_ms));
    d->rdma_uploader =
        fetch::MakeRdmaPartUploader(d->store.get(), d->rdma, d->http_uploader.get(), &d->counters,
                                    std::chrono::milliseconds(c.rdma.declined_backoff_ms));
  }

  fs::FsOptions fo;
  fo.root_prefix = NormalizePrefix(c.s3.prefix);
  fo.ttls.attr = std::chrono::milliseconds(c.metadata.attr_ttl_ms);
  fo.ttls.entry = std::chrono::milliseconds(c.metadata.entry_ttl_ms);
  fo.ttls.negative = std::chrono::milliseconds(c.metadata.negative_ttl_ms);
  fo.uid = c.fuse.uid >= 0 ? static_cast<uint32_t>(c.fuse.uid) : getuid();
  fo.gid = c.fuse.gid >= 0 ? static_cast<uint32_t>(c.fuse.gid) : getgid();
  fo.file_mode = static_cast<uint32_t>(c.fuse.file_mode);
  fo.dir_mode = static_cast<uint32_t>(c.fuse.dir_mode);
  fo.direct_io = c.fuse.direct_io;
  // RDMA lands bytes in the cache without a copy already.
  fo.streamed_reads = c.fuse.direct_io && c.fuse.splice_reads && !d->rdma;
  fo.max_streamed_waits = static_cast<uint32_t>(std::max<uint64_t>(1, c.fuse.max_threads / 2));
  fo.readahead.initial = c.readahead.initial;
  // One stream may hold at most a quarter of the arena in flight, so a small
  // cache still serves several readers; said once, not treated as an error.
  fo.readahead.max = std::min(c.readahead.max, c.cache.size / 4);
  if (fo.readahead.max < c.readahead.max)
    LOG_INFO("readahead.max lowered to %llu MiB (a quarter of cache.size)",
             static_cast<unsigned long long>(fo.readahead.max >> 20));
  fo.readahead.initial = std::min(fo.readahead.initial, fo.readahead.max);
  fo.readahead.tolerance = std::max<uint64_t>(c.cache.block_size, 1 << 20);
  fo.readahead.max_streams = static_cast<uint32_t>(c.readahead.streams_per_file);
  fo.max_request = c.readahead.max_request;
  fo.cache_wait = std::chrono::milliseconds(c.cache.wait_timeout_ms);
  fo.read_timeout = std::chrono::milliseconds(c.fuse.read_timeout_ms);
  fo.object_attributes = c.metadata.object_attributes;
  fo.listing = c.metadata.listing == "heads" ? fs::FsOptions::Listing::kHeads
                                             : fs::FsOptions::Listing::kRecords;
  fo.idle_forget = std::chrono::milliseconds(c.metadata.idle_forget_ms);
  fo.max_inodes = c.metadata.max_inodes;
  fo.small_file_read = c.metadata.small_file_read;
  fo.writable = c.write.enabled;
  fo.streaming = c.write.streaming;
  fo.detect_conflicts = c.write.conflict == "detect";
  fo.max_file_size = c.write.max_file_size;
  fo.staging_dir = c.write.staging_dir;
  fo.upload_scope = c.s3.endpoint + "\n" + c.s3.bucket + "\n" + NormalizePrefix(c.s3.prefix);
  fo.staging_max = c.write.staging_max;
  d->fs = std::make_unique<fs::Filesystem>(
      fo, d->store.get(), d->rdma_fetcher ? d->rdma_fetcher.get() : d->http_fetcher.get(),
      d->cache.get(), d->rdma_uploader ? d->rdma_uploader.get() : d->http_uploader.get(),
      d->write_buffers.get());
  if (auto r = d->fs->PrepareWrites(); !r) return tl::unexpected(r.error());
  return d;
}

Result<void> CheckEndpoint(const config::Config& c, s3::ObjectStore* store) {
  s3::ListRequest req;
  req.prefix = NormalizePrefix(c.s3.prefix);
  req.delimiter = "/";
  req.max_keys = 1;
  std::string where = "endpoint " + c.s3.endpoint + ", bucket '" + c.s3.bucket + "'";
  // The answer may never come (a server that accepts and stays silent): the
  // mount command waits s3.startup_timeout, not the retries' sum.
  auto answer = std::make_shared<std::promise<Result<s3::ListPage>>>();
  auto future = answer->get_future();
  store->ListAsync(req,
                   [answer](Result<s3::ListPage> page) { answer->set_value(std::move(page)); });
  if (future.wait_for(std::chrono::milliseconds(c.s3.startup_timeout_ms)) !=
      std::future_status::ready)
    return MakeError(Errc::kTimedOut, "no answer from " + where + " within " +
                                          std::to_string(c.s3.startup_timeout_ms / 1000) +
                                          " s (s3.startup_timeout): the server accepts "
                                          "connections but does not reply; check s3.endpoint");
  auto r = future.get();
  if (r) return {};
  const Error& e = r.error();
  switch (e.code) {
    case Errc::kConnection:
    case Errc::kTimedOut:
      return MakeError(e.code, "cannot reach " + where + ": " + e.message +
                                   " (is the server running? check s3.endpoint)");
    case Errc::kAccessDenied:
      return MakeError(e.code, "the server refused our credentials for " + where + ": " +
                                   e.message +
                                   " (check s3.access_key/s3.secret_key or the profile)");
    case Errc::kNoSuchBucket:
      return MakeError(e.code, "bucket '" + c.s3.bucket + "' does not exist at " + c.s3.endpoint);
    default:
      return MakeError(e.code, "startup check failed for " + where + ": " + e.ToString());
  }
}

}  // namespace s3rdmafs::daemon
