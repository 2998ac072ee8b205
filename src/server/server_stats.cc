#include "server_stats.h"

namespace s3rdma::server {

void ServerStats::CountRequest(std::string_view method) {
  size_t i = 0;
  while (i + 1 < kMethods.size() && kMethods[i] != method) ++i;
  requests[i].fetch_add(1, std::memory_order_relaxed);
}

std::string ServerStats::Render(bool gateway, uint64_t rdma_connections) const {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto sample = [&](const std::string& name, uint64_t v) {
    out += name + " " + std::to_string(v) + "\n";
  };
  family("s3rdma_server_gateway", "gauge",
         "1 when forwarding to an upstream S3, 0 over a directory");
  sample("s3rdma_server_gateway", gateway ? 1 : 0);
  family("s3rdma_server_requests_total", "counter", "S3 requests received, by method");
  for (size_t i = 0; i < kMethods.size(); ++i)
    sample("s3rdma_server_requests_total{method=\"" + std::string(kMethods[i]) + "\"}",
           requests[i].load());
  family("s3rdma_server_rdma_bytes_total", "counter",
         "Object bytes moved by RDMA: GET bodies written, PUT bodies read");
  sample("s3rdma_server_rdma_bytes_total{op=\"write\"}", rdma_written.load());
  sample("s3rdma_server_rdma_bytes_total{op=\"read\"}", rdma_read.load());
  family("s3rdma_server_rdma_connections", "gauge", "RC connections bound to clients");
  sample("s3rdma_server_rdma_connections", rdma_connections);
  if (gateway) {
    family("s3rdma_server_upstream_bytes_total", "counter",
           "Body bytes moved between the gateway and its upstream");
    sample("s3rdma_server_upstream_bytes_total{direction=\"down\"}", upstream_down.load());
    sample("s3rdma_server_upstream_bytes_total{direction=\"up\"}", upstream_up.load());
    family("s3rdma_server_upstream_failures_total", "counter",
           "Upstream requests that failed: no answer (503 to the client), or broken mid-body");
    sample("s3rdma_server_upstream_failures_total{kind=\"unanswered\"}",
           upstream_unanswered.load());
    sample("s3rdma_server_upstream_failures_total{kind=\"broken\"}", upstream_broken.load());
  }
  return out;
}

}  // namespace s3rdma::server
