// What s3rdma-server counts, for its metrics endpoint (--metrics-listen):
// requests by method, RDMA bytes by direction and, as a gateway, the bytes it
// moved to and from its upstream and the upstream requests that failed.
// Owned by main(); the handler adds to it from every connection thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace s3rdma::server {

struct ServerStats {
  static constexpr std::array<std::string_view, 7> kMethods = {"GET",    "HEAD",    "PUT",  "POST",
                                                               "DELETE", "OPTIONS", "other"};
  std::array<std::atomic<uint64_t>, kMethods.size()> requests{};
  std::atomic<uint64_t> rdma_written{0};                   // GET bodies by RDMA WRITE
  std::atomic<uint64_t> rdma_read{0};                      // PUT bodies by RDMA READ
  std::atomic<uint64_t> upstream_down{0}, upstream_up{0};  // body bytes from / to the upstream
  std::atomic<uint64_t> upstream_unanswered{0};            // no answer came (503 to the client)
  std::atomic<uint64_t> upstream_broken{0};                // broke after the answer began

  void CountRequest(std::string_view method);
  // Prometheus text; `gateway`: whether the upstream lines mean anything.
  std::string Render(bool gateway, uint64_t rdma_connections) const;
};

}  // namespace s3rdma::server
