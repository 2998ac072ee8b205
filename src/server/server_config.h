// s3rdma-server configuration: TOML file plus command-line flags.
#pragma once

#include <map>
#include <string>

#include "s3rdmafs/common/result.h"

namespace s3rdma::server {

struct ServerConfig {
  std::string listen = "127.0.0.1";
  uint16_t port = 9000;
  std::string root;  // bucket = top-level directory of root
  std::string region = "us-east-1";
  std::map<std::string, std::string> keys;  // access key -> secret key
  bool anonymous = false;                   // accept unsigned requests (read and write)
  std::string domain;  // "s3.local": Host "<bucket>.s3.local" is virtual-hosted style
  unsigned max_connections = 1024;
  std::string rdma_listen;         // "ADDR:PORT" of the RC RDMA listener; "" = HTTP only
  std::string log_level = "info";  // debug, info, warn or error
};

s3rdmafs::Result<ServerConfig> LoadServerConfig(const std::string& path);

}  // namespace s3rdma::server
