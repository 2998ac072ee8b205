// The upstream S3 of a gateway (s3rdma-server --upstream): one request at a
// time per calling thread, streamed both ways, re-signed with the gateway's
// own credentials (SigV4, path-style). The body goes up as it is pulled and
// the answer comes down as it arrives: nothing is buffered whole.
// Thread-safety: Send may run on many threads at once; each thread keeps its
// own libcurl handle, so its connection to the upstream is reused.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "exchange.h"
#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/sigv4.h"
#include "server_config.h"

namespace s3rdma::server {

struct UpstreamCall {
  std::string method;
  std::string bucket, key;  // decoded; both empty: the service (ListBuckets)
  std::string raw_query;    // as the client sent it, its own auth parameters removed
  Headers headers;          // end-to-end headers to send on
  // What the signature covers: the client's SHA-256 of the body (the
  // upstream checks it), UNSIGNED-PAYLOAD, or empty for "no body".
  std::string payload_hash;
  bool sign = true;                     // false: an anonymous client, sent on unsigned
  std::optional<uint64_t> body_length;  // nullopt: sent chunked (the client's was)
  // Pulls body bytes: > 0 bytes, 0 at the end, < 0 aborts (nothing is stored).
  std::function<long(char*, size_t)> read_body;
  // The answer: its status and headers (hop-by-hop ones dropped), then its
  // body in pieces. Either returning false aborts the transfer.
  std::function<bool(int status, const Headers& headers)> on_head;
  std::function<bool(const char*, size_t)> on_body;
};

class Upstream {
 public:
  // Resolves the credentials (config, environment, shared files); names the
  // source in the log.
  static s3rdmafs::Result<std::unique_ptr<Upstream>> Create(const UpstreamConfig& config);

  // Errors: kConnection when no answer came (the upstream is down or timed
  // out, before on_head), kIo when the transfer broke or a callback aborted
  // it after on_head.
  s3rdmafs::Result<void> Send(UpstreamCall& call);

  const UpstreamConfig& config() const { return config_; }

 private:
  explicit Upstream(UpstreamConfig config) : config_(std::move(config)) {}
  UpstreamConfig config_;
  s3rdmafs::s3::Credentials credentials_;
  std::string host_;  // host[:port], as signed
};

// Request headers a gateway must not send on: hop-by-hop ones, and what the
// client's signature and framing consist of (re-made for the upstream).
bool IsGatewayOwnedHeader(std::string_view lowercase_name);
// The query without the client's presigned-URL parameters.
std::string WithoutAuthParameters(const std::string& raw_query);

}  // namespace s3rdma::server
