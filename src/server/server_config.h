// s3rdma-server configuration: TOML file plus command-line flags.
#pragma once

#include <map>
#include <string>

#include "s3rdmafs/common/result.h"

namespace s3rdma::server {

// Gateway mode: every S3 request is forwarded to this endpoint, re-signed
// with the gateway's own credentials; only the RDMA data path is served here.
struct UpstreamConfig {
  std::string endpoint;  // http(s)://host[:port]; "" = serve `root` instead
  std::string region = "us-east-1";
  // Credentials, found as the mount finds its own (s3rdmafs/s3/credentials.h):
  // these, else AWS_ACCESS_KEY_ID/..., else the shared credentials files.
  std::string access_key, secret_key, session_token, profile;
  bool anonymous = false;  // send unsigned requests upstream
  std::string ca_bundle;   // for an https upstream with a private CA
  unsigned connect_timeout_ms = 5000;
  unsigned stall_timeout_s = 30;  // a transfer with no byte for this long fails
};

struct ServerConfig {
  std::string listen = "127.0.0.1";
  uint16_t port = 9000;
  std::string root;  // bucket = top-level directory of root
  std::string region = "us-east-1";
  std::map<std::string, std::string> keys;  // access key -> secret key
  bool anonymous = false;                   // accept unsigned requests (read and write)
  std::string domain;  // "s3.local": Host "<bucket>.s3.local" is virtual-hosted style
  unsigned max_connections = 1024;
  std::string rdma_listen;  // "ADDR:PORT" of the RC RDMA listener; "" = HTTP only
  // A test switch: answer RDMA requests the way another server declines
  // them ("ceph": serve the plain S3 request, no x-amz-rdma-reply; "aistor":
  // 501 with x-amz-rdma-reply: 501; "rustfs": 400 InvalidRequest); "" = serve them.
  std::string rdma_decline;
  // Registered staging per RDMA request (two halves: one on the wire while
  // the other is filled) and requests served at once per connection.
  uint64_t rdma_staging_per_request = 2ull << 20;
  uint32_t rdma_requests_per_connection = 8;
  std::string log_level = "info";  // debug, info, warn or error
  std::string metrics_listen;      // "127.0.0.1:9465" or "unix:/run/x.sock"; "" = none
  UpstreamConfig upstream;
  bool gateway() const { return !upstream.endpoint.empty(); }
};

s3rdmafs::Result<ServerConfig> LoadServerConfig(const std::string& path);

}  // namespace s3rdma::server
