// s3rdma-server: an S3 endpoint over a local directory (bucket = top-level
// directory). The reference server for s3rdmafs tests, demo and users without
// a commercial RDMA-for-S3 server.
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "http_session.h"
#include "local_backend.h"
#include "rdma_endpoint.h"
#include "s3rdmafs/common/log.h"
#include "s3rdmafs/metrics/metrics_server.h"
#include "server_config.h"
#include "upstream.h"

using namespace s3rdma::server;

static int Main(int argc, char** argv) {
  std::string config_file, listen, root, region, access_key, secret_key, port_file, log_level;
  int port = -1;
  bool anonymous = false;
  CLI::App app{"s3rdma-server: S3 endpoint over a local directory (reference server for s3rdmafs)"};
  app.add_option("-c,--config", config_file, "TOML configuration file");
  app.add_option("--listen", listen, "address to listen on (default 127.0.0.1)");
  app.add_option("--port", port, "TCP port (default 9000; 0 picks a free one)");
  app.add_option("--root", root, "directory whose subdirectories are the buckets");
  app.add_option("--region", region, "region clients must sign for (default us-east-1)");
  app.add_option("--access-key", access_key, "accept this access key ...");
  app.add_option("--secret-key", secret_key, "... with this secret key");
  app.add_flag("--anonymous", anonymous, "accept unsigned requests");
  std::string upstream, upstream_region, upstream_profile;
  app.add_option("--upstream", upstream,
                 "gateway mode: forward every S3 request to this http(s)://host[:port] (Ceph "
                 "RGW, MinIO, AWS), serving only the RDMA data path here; --root is not used");
  app.add_option("--upstream-region", upstream_region, "region to sign upstream requests for");
  app.add_option("--upstream-profile", upstream_profile,
                 "profile of the shared credentials files for the upstream");
  std::string domain, rdma_listen;
  app.add_option("--rdma-listen", rdma_listen,
                 "serve the RC RDMA data path on ADDR:PORT (an RDMA device's IP)");
  std::string rdma_decline;
  app.add_option("--rdma-decline", rdma_decline,
                 "testing clients: decline RDMA requests as another server does (ceph: the plain "
                 "answer without x-amz-rdma-reply; aistor: 501; rustfs: 400 InvalidRequest)")
      ->check(CLI::IsMember({"ceph", "aistor", "rustfs"}));
  app.add_option("--domain", domain, "serve virtual-hosted requests: Host <bucket>.DOMAIN");
  app.add_option("--port-file", port_file, "write the bound port here once listening");
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "serve GET /metrics (Prometheus text) on 127.0.0.1:PORT or unix:PATH");
  app.add_option("--log-level", log_level, "debug, info, warn or error");
  app.set_version_flag("--version", std::string("s3rdma-server ") + S3RDMAFS_VERSION);
  CLI11_PARSE(app, argc, argv);

  ServerConfig c;
  if (!config_file.empty()) {
    auto loaded = LoadServerConfig(config_file);
    if (!loaded) {
      fprintf(stderr, "s3rdma-server: %s\n", loaded.error().message.c_str());
      return 2;
    }
    c = *loaded;
  }
  if (!listen.empty()) c.listen = listen;
  if (port >= 0) c.port = static_cast<uint16_t>(port);
  if (!root.empty()) c.root = root;
  if (!region.empty()) c.region = region;
  if (anonymous) c.anonymous = true;
  if (!domain.empty()) c.domain = domain;
  if (!rdma_listen.empty()) c.rdma_listen = rdma_listen;
  if (!rdma_decline.empty()) c.rdma_decline = rdma_decline;
  if (!log_level.empty()) c.log_level = log_level;
  if (!metrics_listen.empty()) c.metrics_listen = metrics_listen;
  if (!upstream.empty()) c.upstream.endpoint = upstream;
  if (!upstream_region.empty()) c.upstream.region = upstream_region;
  if (!upstream_profile.empty()) c.upstream.profile = upstream_profile;
  if (!access_key.empty() || !secret_key.empty()) {
    if (access_key.empty() || secret_key.empty()) {
      fprintf(stderr, "s3rdma-server: --access-key and --secret-key go together\n");
      return 2;
    }
    c.keys[access_key] = secret_key;
  }
  struct stat st;
  if (!c.gateway() && (c.root.empty() || stat(c.root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    fprintf(stderr, "s3rdma-server: --root must name an existing directory (got '%s')\n",
            c.root.c_str());
    return 2;
  }
  if (c.keys.empty() && !c.anonymous) {
    fprintf(stderr,
            "s3rdma-server: no credentials configured: give --access-key/--secret-key, [[keys]] in "
            "the config, or --anonymous\n");
    return 2;
  }
  s3rdmafs::LogLevel level;
  if (!s3rdmafs::ParseLogLevel(c.log_level, &level)) {
    fprintf(stderr, "s3rdma-server: bad log level '%s'\n", c.log_level.c_str());
    return 2;
  }
  s3rdmafs::SetLogLevel(level);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Upstream> gateway_upstream;
  if (c.gateway()) {
    auto u = Upstream::Create(c.upstream);
    if (!u) {
      fprintf(stderr, "s3rdma-server: %s\n", u.error().message.c_str());
      return 2;
    }
    gateway_upstream = std::move(*u);
    c.root.clear();  // a gateway keeps nothing
  }
  LocalBackend backend(c.root);
  if (std::string why = c.gateway() ? "" : backend.ProbeMetadataSupport(); !why.empty())
    LOG_WARN(
        "%s: object metadata (x-amz-meta-*) cannot be kept here: PUTs that carry it are "
        "refused with 501 (use a root on ext4, xfs, btrfs or tmpfs >= 6.6)",
        why.c_str());
  std::unique_ptr<RdmaEndpoint> rdma;
  if (!c.rdma_listen.empty()) {
    size_t colon = c.rdma_listen.rfind(':');
    if (colon == std::string::npos) {
      fprintf(stderr, "s3rdma-server: --rdma-listen takes ADDR:PORT\n");
      return 2;
    }
    RdmaEndpoint::Options ro;
    ro.staging_per_request = c.rdma_staging_per_request;
    ro.requests_per_connection = c.rdma_requests_per_connection;
    auto ep =
        RdmaEndpoint::Listen(c.rdma_listen.substr(0, colon),
                             static_cast<uint16_t>(std::stoi(c.rdma_listen.substr(colon + 1))), ro);
    if (!ep) {
      fprintf(stderr, "s3rdma-server: %s\n", ep.error().message.c_str());
      return 1;
    }
    rdma = std::move(*ep);
  }
  ServerStats stats;
  std::unique_ptr<s3rdmafs::metrics::MetricsServer> metrics;
  if (!c.metrics_listen.empty()) {
    auto m = s3rdmafs::metrics::MetricsServer::Start(
        c.metrics_listen,
        [&stats, &c, &rdma] { return stats.Render(c.gateway(), rdma ? rdma->established() : 0); },
        "metrics_listen");
    if (!m) {
      fprintf(stderr, "s3rdma-server: %s\n", m.error().message.c_str());
      return 2;
    }
    metrics = std::move(*m);
  }
  S3Handler handler(c, c.gateway() ? nullptr : &backend, rdma.get(), gateway_upstream.get(),
                    &stats);
  std::string err =
      RunHttpServer(c.listen, c.port, c.max_connections, &handler, [&](uint16_t bound) {
        LOG_INFO("s3rdma-server listening on http://%s:%u, %s %s, region %s", c.listen.c_str(),
                 bound, c.gateway() ? "gateway to" : "root",
                 c.gateway() ? c.upstream.endpoint.c_str() : c.root.c_str(), c.region.c_str());
        sd_notifyf(0, "READY=1\nSTATUS=listening on %s:%u", c.listen.c_str(), bound);
        if (!port_file.empty()) {
          std::string tmp = port_file + ".tmp";
          std::ofstream(tmp) << bound << "\n";
          rename(tmp.c_str(), port_file.c_str());
        }
      });
  fprintf(stderr, "s3rdma-server: %s\n", err.c_str());
  return 1;
}

// Whatever is thrown past Main would abort (exit 134, no message): say what
// it was instead.
int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    fprintf(stderr, "s3rdma-server: %s\n", e.what());
  } catch (...) {
    fprintf(stderr, "s3rdma-server: unexpected error\n");
  }
  return 1;
}
