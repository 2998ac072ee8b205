// The metrics endpoint of the daemon and of s3rdma-server: GET /metrics
// answers `render`'s Prometheus text (the daemon's is the same text as
// log.stats_file). Off unless asked for; it binds only to loopback or a Unix
// socket, since the numbers name buckets and keys and are nobody else's
// business (a node's scraping agent reads them).
// Thread-safety: one thread of its own; `render` must be callable from it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::metrics {

class MetricsServer {
 public:
  // `listen`: "127.0.0.1:9464", "[::1]:9464", "localhost:9464" or "unix:/run/x.sock".
  // `setting`: what the errors name it.
  static Result<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen, std::function<std::string()> render,
      const std::string& setting = "metrics.listen");
  virtual ~MetricsServer() = default;
  virtual std::string where() const = 0;  // what it listens on, for the log
};

}  // namespace s3rdmafs::metrics
