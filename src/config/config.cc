#include "s3rdmafs/config/config.h"

#include <toml++/toml.h>

#include <fstream>
#include <sstream>

#include "fields.h"
#include "s3rdmafs/common/endpoint_list.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::config {
namespace {

const Field* FindField(std::string_view section, std::string_view key) {
  for (const Field& f : Fields())
    if (section == f.section && key == f.key) return &f;
  return nullptr;
}

// TOML values of any scalar type become the text the field parser takes, so
// `size = 1073741824` and `size = "1GiB"` both work, and one parser decides.
bool NodeToText(const toml::node& node, const Field& field, std::string* out, std::string* why) {
  if (auto s = node.as_string()) {
    *out = s->get();
    return true;
  }
  if (auto b = node.as_boolean()) {
    if (field.kind != FieldKind::kBool) {
      *why = "expected a " + std::string(field.kind == FieldKind::kString ? "string" : "number") +
             ", got a boolean";
      return false;
    }
    *out = b->get() ? "true" : "false";
    return true;
  }
  if (auto i = node.as_integer()) {
    switch (field.kind) {
      case FieldKind::kUint:
      case FieldKind::kInt:
      case FieldKind::kSize:
        *out = std::to_string(i->get());
        return true;
      case FieldKind::kDuration:  // a bare number of seconds
        *out = std::to_string(i->get()) + "s";
        return true;
      default:
        *why = "expected a string, got an integer";
        return false;
    }
  }
  *why = "unsupported value type";
  return false;
}

}  // namespace

Result<Config> ParseToml(std::string_view text, std::string_view source_name) {
  toml::table table;
  try {
    table = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return MakeError(Errc::kConfig, msg.str());
  }
  Config config;
  std::vector<std::string> problems;
  for (auto&& [section_name, section_node] : table) {
    const toml::table* section = section_node.as_table();
    std::string sname(section_name.str());
    if (!section) {
      problems.push_back(sname + ": unknown top-level key (keys live in sections like [s3])");
      continue;
    }
    for (auto&& [key_name, value] : *section) {
      std::string kname(key_name.str());
      const Field* field = FindField(sname, kname);
      if (!field) {
        problems.push_back(sname + "." + kname + ": unknown key");
        continue;
      }
      std::string textual, why;
      if (!NodeToText(value, *field, &textual, &why) ||
          !(why = field->set_text(config, textual)).empty()) {
        problems.push_back(sname + "." + kname + ": " + why);
      }
    }
  }
  if (!problems.empty()) {
    std::string msg =
        std::string(source_name) + ": " + std::to_string(problems.size()) + " error(s):";
    for (auto& p : problems) msg += "\n  " + p;
    return MakeError(Errc::kConfig, msg);
  }
  return config;
}

Result<Config> LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return MakeError(Errc::kConfig, "cannot read config file '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseToml(buf.str(), path);
}

Result<void> ApplyOverride(Config* config, std::string_view assignment) {
  size_t eq = assignment.find('=');
  size_t dot = assignment.find('.');
  if (eq == std::string_view::npos || dot == std::string_view::npos || dot > eq)
    return MakeError(Errc::kConfig, "override '" + std::string(assignment) +
                                        "' is not of the form section.key=value");
  std::string_view section = assignment.substr(0, dot);
  std::string_view key = assignment.substr(dot + 1, eq - dot - 1);
  const Field* field = FindField(section, key);
  if (!field)
    return MakeError(Errc::kConfig,
                     std::string(section) + "." + std::string(key) + ": unknown key");
  std::string why = field->set_text(*config, std::string(assignment.substr(eq + 1)));
  if (!why.empty())
    return MakeError(Errc::kConfig, std::string(section) + "." + std::string(key) + ": " + why);
  return {};
}

std::optional<uint16_t> ParsePort(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string digits = host_port.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  unsigned long port = std::stoul(digits);
  if (port < 1 || port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

Result<void> Validate(const Config& c) {
  std::vector<std::string> p;
  // One URL, or several (gateways in front of one store).
  const auto endpoints = SplitEndpointList(c.s3.endpoint);
  if (endpoints.empty()) p.push_back("s3.endpoint: must start with http:// or https://, got ''");
  for (const std::string& one : endpoints)
    if (one.rfind("http://", 0) != 0 && one.rfind("https://", 0) != 0) {
      p.push_back("s3.endpoint: must start with http:// or https://, got '" + one + "'" +
                  (one == c.s3.endpoint ? "" : " in '" + c.s3.endpoint + "'"));
      break;
    }
  if (c.s3.bucket.empty()) p.push_back("s3.bucket: no bucket given (config or command line)");
  if (c.s3.region.empty()) p.push_back("s3.region: must not be empty");
  if (c.s3.max_in_flight < 1 || c.s3.max_in_flight > 1024)
    p.push_back("s3.max_in_flight: must be 1..1024");
  if (c.s3.max_metadata_in_flight < 1 || c.s3.max_metadata_in_flight > 1024)
    p.push_back("s3.max_metadata_in_flight: must be 1..1024");
  if (c.s3.anonymous && !c.s3.access_key.empty())
    p.push_back("s3.anonymous: cannot be combined with s3.access_key");
  if (c.s3.access_key.empty() != c.s3.secret_key.empty())
    p.push_back("s3.access_key and s3.secret_key: give both or neither");
  uint64_t bs = c.cache.block_size;
  if (bs < (64u << 10) || bs > (64u << 20) || (bs & (bs - 1)))
    p.push_back("cache.block_size: must be a power of two between 64KiB and 64MiB");
  if (c.cache.size < 16 * bs)
    p.push_back("cache.size: must hold at least 16 blocks (16 x cache.block_size)");
  if (c.readahead.max < c.readahead.initial)
    p.push_back("readahead.max: must be >= readahead.initial");
  if (c.readahead.max_request < bs)
    p.push_back("readahead.max_request: must be >= cache.block_size");
  if (c.readahead.streams_per_file < 1 || c.readahead.streams_per_file > 64)
    p.push_back("readahead.streams_per_file: must be 1..64");
  if (c.fuse.max_threads < 1 || c.fuse.max_threads > 1024)
    p.push_back("fuse.max_threads: must be 1..1024");
  if (c.write.part_size < (5ull << 20) || c.write.part_size > (5ull << 30))
    p.push_back("write.part_size: must be 5MiB..5GiB (S3's part size limits)");
  if (c.write.buffer_memory < 2 * c.write.part_size)
    p.push_back("write.buffer_memory: must hold at least 2 parts (2 x write.part_size)");
  if (c.write.staging_dir.empty() || c.write.staging_dir[0] != '/')
    p.push_back("write.staging_dir: must be an absolute path");
  if (c.write.max_file_size > c.write.part_size * 10000)
    p.push_back(
        "write.max_file_size: more than 10,000 parts of write.part_size; raise "
        "write.part_size or lower write.max_file_size");
  // One RDMA listener (reached through the first S3 endpoint), or one per
  // S3 endpoint in the same order (gateways, each with its own listener).
  // Each may list rails: several addresses of that server, '|' between them.
  const auto rdma_endpoints = SplitEndpointList(c.rdma.endpoint);
  bool rails_ok = true;
  for (const std::string& entry : rdma_endpoints)
    for (const std::string& one : SplitRails(entry))
      if (rails_ok && !ParsePort(one)) {
        p.push_back("rdma.endpoint: must be ADDR:PORT with a port from 1 to 65535, got '" + one +
                    "'" + (one == c.rdma.endpoint ? "" : " in '" + c.rdma.endpoint + "'"));
        rails_ok = false;
      }
  if (c.rdma.connections < 1 || c.rdma.connections > 16)
    p.push_back("rdma.connections: must be 1 to 16 connections per RDMA address, got " +
                std::to_string(c.rdma.connections));
  if (rdma_endpoints.size() > 1 && rdma_endpoints.size() != endpoints.size())
    p.push_back("rdma.endpoint: " + std::to_string(rdma_endpoints.size()) + " RDMA listeners for " +
                std::to_string(endpoints.size()) +
                " s3.endpoint URLs; give one, or one per s3.endpoint in the same order");
  if (c.rdma.reconnect_min_ms < 10 || c.rdma.reconnect_max_ms < c.rdma.reconnect_min_ms)
    p.push_back(
        "rdma.reconnect_min and rdma.reconnect_max: need 10ms <= reconnect_min <= reconnect_max");
  if (c.rdma.port < 1 || c.rdma.port > 255)
    p.push_back("rdma.port: must be a device port from 1 to 255, got " +
                std::to_string(c.rdma.port));
  if (c.rdma.required && c.rdma.transport == "rc" && c.rdma.endpoint.empty())
    p.push_back("rdma.required: needs rdma.endpoint (or rdma.transport = \"dc\")");
  if (std::string why = CheckMetricsListen(c.metrics.listen); !why.empty())
    p.push_back("metrics.listen: " + why);
  LogLevel level;
  if (!ParseLogLevel(c.log.level, &level))
    p.push_back("log.level: must be debug, info, warn or error");
  if (p.empty()) return {};
  std::string msg = std::to_string(p.size()) + " configuration error(s):";
  for (auto& s : p) msg += "\n  " + s;
  return MakeError(Errc::kConfig, msg);
}

std::string Print(const Config& config) {
  std::string out;
  std::string section;
  for (const Field& f : Fields()) {
    if (section != f.section) {
      section = f.section;
      out += (out.empty() ? "[" : "\n[") + section + "]\n";
    }
    std::string value = f.get_text(config);
    if (f.secret && value != "\"\"") value = "\"********\"";
    out += std::string(f.key) + " = " + value + "\n";
  }
  return out;
}

std::string CheckMetricsListen(const std::string& listen) {
  if (listen.empty()) return "";
  if (listen.rfind("unix:", 0) == 0)
    return listen.size() > 6 && listen[5] == '/' ? "" : "unix: needs an absolute socket path";
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size() ||
      listen.find_first_not_of("0123456789", colon + 1) != std::string::npos)
    return "must be HOST:PORT or unix:/path";
  std::string host = listen.substr(0, colon);
  if (host == "[::1]") host = "::1";
  if (host != "localhost" && host.rfind("127.", 0) != 0 && host != "::1")
    return "must be a loopback address (127.0.0.1, ::1, localhost) with a port, or a unix: socket";
  return "";
}

std::vector<std::string> AllKeys() {
  std::vector<std::string> keys;
  for (const Field& f : Fields()) keys.push_back(std::string(f.section) + "." + f.key);
  return keys;
}

}  // namespace s3rdmafs::config
