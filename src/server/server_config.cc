#include "server_config.h"

#include <toml++/toml.h>

#include <sstream>

#include "s3rdmafs/common/size_parse.h"

namespace s3rdma::server {

using s3rdmafs::Errc;
using s3rdmafs::MakeError;

s3rdmafs::Result<ServerConfig> LoadServerConfig(const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << path << ":" << e.source().begin.line << ": " << e.description();
    return MakeError(Errc::kConfig, m.str());
  }
  ServerConfig c;
  std::vector<std::string> problems;
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (key == "listen" && v.is_string())
      c.listen = v.as_string()->get();
    else if (key == "port" && v.is_integer())
      c.port = static_cast<uint16_t>(v.as_integer()->get());
    else if (key == "root" && v.is_string())
      c.root = v.as_string()->get();
    else if (key == "region" && v.is_string())
      c.region = v.as_string()->get();
    else if (key == "anonymous" && v.is_boolean())
      c.anonymous = v.as_boolean()->get();
    else if (key == "domain" && v.is_string())
      c.domain = v.as_string()->get();
    else if (key == "max_connections" && v.is_integer())
      c.max_connections = static_cast<unsigned>(v.as_integer()->get());
    else if (key == "rdma_listen" && v.is_string())
      c.rdma_listen = v.as_string()->get();
    else if (key == "rdma_staging_per_request" && (v.is_string() || v.is_integer())) {
      auto size = v.is_integer() ? s3rdmafs::Result<uint64_t>(v.as_integer()->get())
                                 : s3rdmafs::ParseSize(v.as_string()->get());
      if (!size)
        problems.push_back("rdma_staging_per_request: " + size.error().message);
      else
        c.rdma_staging_per_request = *size;
    } else if (key == "rdma_requests_per_connection" && v.is_integer())
      c.rdma_requests_per_connection = static_cast<uint32_t>(v.as_integer()->get());
    else if (key == "log_level" && v.is_string())
      c.log_level = v.as_string()->get();
    else if (key == "metrics_listen" && v.is_string())
      c.metrics_listen = v.as_string()->get();
    else if (key == "keys" && v.is_array_of_tables()) {
      for (auto& entry : *v.as_array()) {
        auto* e = entry.as_table();
        auto ak = (*e)["access_key"].value<std::string>();
        auto sk = (*e)["secret_key"].value<std::string>();
        if (!ak || !sk)
          problems.push_back("keys: each [[keys]] needs access_key and secret_key");
        else
          c.keys[*ak] = *sk;
      }
    } else if (key == "upstream" && v.is_table()) {
      for (auto&& [uk, uv] : *v.as_table()) {
        std::string name(uk.str());
        UpstreamConfig& u = c.upstream;
        std::string* text = name == "endpoint"        ? &u.endpoint
                            : name == "region"        ? &u.region
                            : name == "access_key"    ? &u.access_key
                            : name == "secret_key"    ? &u.secret_key
                            : name == "session_token" ? &u.session_token
                            : name == "profile"       ? &u.profile
                            : name == "ca_bundle"     ? &u.ca_bundle
                                                      : nullptr;
        if (text && uv.is_string())
          *text = uv.as_string()->get();
        else if (name == "anonymous" && uv.is_boolean())
          u.anonymous = uv.as_boolean()->get();
        else if (name == "connect_timeout_ms" && uv.is_integer() && uv.as_integer()->get() > 0)
          u.connect_timeout_ms = static_cast<unsigned>(uv.as_integer()->get());
        else if (name == "stall_timeout_s" && uv.is_integer() && uv.as_integer()->get() > 0)
          u.stall_timeout_s = static_cast<unsigned>(uv.as_integer()->get());
        else
          problems.push_back("upstream." + name + ": unknown key or wrong type");
      }
    } else {
      problems.push_back(key + ": unknown key or wrong type");
    }
  }
  if (!problems.empty()) {
    std::string m = path + ":";
    for (auto& p : problems) m += "\n  " + p;
    return MakeError(Errc::kConfig, m);
  }
  return c;
}

}  // namespace s3rdma::server
