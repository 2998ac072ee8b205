// The metrics endpoint: GET /metrics answers the daemon's counters in
// Prometheus text format (the same text as log.stats_file). Off unless
// metrics.listen is set; it binds only to loopback or a Unix socket, since the
// numbers name buckets and keys and are nobody else's business.
// Thread-safety: one thread of its own; `render` must be callable from it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::daemon {

class MetricsServer {
 public:
  // `listen`: "127.0.0.1:9464", "[::1]:9464", "localhost:9464" or "unix:/run/x.sock".
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                      std::function<std::string()> render);
  virtual ~MetricsServer() = default;
  virtual std::string where() const = 0;  // what it listens on, for the log
};

}  // namespace s3rdmafs::daemon
