// The daemon's typed configuration. One TOML file (/etc/s3rdmafs/<name>.toml by
// convention) plus command-line overrides ("section.key=value"). Every key is
// declared once in the field table (src/config/fields.cc): parsing, overrides,
// validation messages and --print-config all come from that table, so a key
// cannot exist in one place and not another.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::config {

enum class Addressing { kPath, kVirtual };

struct S3Config {
  std::string endpoint = "http://127.0.0.1:9000";
  std::string region = "us-east-1";
  std::string bucket;
  std::string prefix;  // mount only keys under this prefix ("" = whole bucket)
  Addressing addressing = Addressing::kPath;
  std::string ca_bundle;  // PEM file for HTTPS; "" = system default
  bool anonymous = false;
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  std::string profile;          // shared-credentials profile; "" = $AWS_PROFILE or "default"
  uint64_t max_in_flight = 32;  // data requests (GET ranges, PUTs, parts, RDMA)
  uint64_t max_metadata_in_flight = 16;  // HEAD, LIST and the rest: never behind the data
  uint64_t max_retries = 4;
  uint64_t retry_base_delay_ms = 100;
  uint64_t retry_max_delay_ms = 5000;
  uint64_t connect_timeout_ms = 5000;
  uint64_t low_speed_timeout_ms = 30000;  // abort a transfer that stalls this long
  bool direct_receive = true;             // plain-HTTP GETs into cache blocks, not via curl
  uint64_t startup_timeout_ms = 10000;    // the start-up check's answer, retries included
  bool startup_check = true;
};

struct CacheConfig {
  uint64_t size = 1ull << 30;
  uint64_t block_size = 1ull << 20;
  bool hugepages = true;
  bool prefault = true;
  uint64_t wait_timeout_ms = 60000;  // longest a read waits for a free block
};

struct ReadaheadConfig {
  uint64_t initial = 2ull << 20;
  uint64_t max = 64ull << 20;
  uint64_t max_request = 8ull << 20;
  uint64_t streams_per_file = 4;
};

struct MetadataConfig {
  uint64_t attr_ttl_ms = 10000;
  uint64_t entry_ttl_ms = 10000;
  uint64_t negative_ttl_ms = 5000;
  bool object_attributes = true;    // mode/uid/gid/mtime from x-amz-meta-* (a HEAD per file)
  std::string listing = "records";  // what `ls -l` shows of them: "records" or "heads"
  uint64_t idle_forget_ms = 60000;  // inodes untouched this long are released
  uint64_t max_inodes = 200000;     // and the coldest go early past this many
  uint64_t small_file_read = 0;     // files this small come with their attributes (a GET)
};

struct FuseConfig {
  bool allow_other = false;
  bool direct_io = false;
  // With direct_io over http://: sequential reads take their bytes from the
  // socket by splice(2), past the cache (fs/streamed_reads.h).
  bool splice_reads = true;
  uint64_t max_threads = 16;
  uint64_t read_ahead =
      4ull << 20;  // the kernel's read-ahead window for the mount (0: its default)
  uint64_t read_timeout_ms =
      60000;         // a read answers by then (ETIMEDOUT), whatever the network does
  int64_t uid = -1;  // -1 = the mounting user
  int64_t gid = -1;
  uint64_t file_mode = 0644;  // for objects without x-amz-meta-mode
  uint64_t dir_mode = 0755;
};

struct WriteConfig {
  bool enabled = true;  // false: a read-only mount
  uint64_t part_size = 8ull << 20;
  uint64_t buffer_memory = 64ull << 20;  // registered part buffers shared by all writers
  bool streaming = true;                 // finished parts go out while a file is written
  std::string conflict = "detect";  // "detect": If-Match at commit; "overwrite": last close wins
  std::string staging_dir = "/var/cache/s3rdmafs";
  uint64_t staging_max = 16ull << 30;
  uint64_t max_file_size = 0;  // 0 = 10,000 parts (S3's multipart limit)
};

struct RdmaConfig {
  std::string transport =
      "rc";  // "rc" (our protocol, needs endpoint) or "dc" (mlx5 DC, commercial servers)
  std::string endpoint;  // "ADDR:PORT" of the server's RDMA (RC) listener; "" = HTTP only (rc)
  std::string device;    // RDMA device for DC ("" = first)
  uint64_t port = 1;     // its port, for DC
  // RC connections to each RDMA address (rails: each its own QP, which the
  // server serves with its own thread and staging).
  uint64_t connections = 1;
  uint64_t dc_access_key = 0xffeeddcc;
  bool dc_suffixed_token = false;
  bool required = false;  // fail the mount instead of falling back to HTTP
  // RC: a type 2 memory window per request (a token reaches only its own
  // bytes, only while its request runs); false: the region's key in every token.
  bool memory_windows = true;
  uint64_t declined_backoff_ms = 60000;
  // A lost connection (or one that failed at mount) is remade in the
  // background: first after reconnect_min, then at doubling pauses up to reconnect_max.
  uint64_t reconnect_min_ms = 1000;
  uint64_t reconnect_max_ms = 30000;
};

struct LogConfig {
  std::string level = "info";
  std::string stats_file;  // counters in Prometheus text format, rewritten every second ("" = none)
};

struct MetricsConfig {
  std::string listen;  // "" = off; "127.0.0.1:9464" or "unix:/run/s3rdmafs/NAME.sock"
};

struct Config {
  S3Config s3;
  CacheConfig cache;
  ReadaheadConfig readahead;
  MetadataConfig metadata;
  FuseConfig fuse;
  WriteConfig write;
  RdmaConfig rdma;
  LogConfig log;
  MetricsConfig metrics;
};

// Parses TOML text. Unknown keys, wrong types and invalid values are all
// collected; the error message lists every one of them, each with its key.
Result<Config> ParseToml(std::string_view text, std::string_view source_name);
Result<Config> LoadFile(const std::string& path);

// Applies "section.key=value" overrides (command line, mount -o).
Result<void> ApplyOverride(Config* config, std::string_view assignment);

// Cross-field checks; returns every problem at once.
Result<void> Validate(const Config& config);

// The effective configuration as TOML, secrets masked.
std::string Print(const Config& config);

// Every key as "section.key", in declaration order (docs and tests use it).
std::vector<std::string> AllKeys();

// "" when `listen` is a valid metrics.listen (empty, a loopback HOST:PORT, or
// unix:/path), else why not.
std::string CheckMetricsListen(const std::string& listen);

// The port of "HOST:PORT" when it is a number from 1 to 65535.
std::optional<uint16_t> ParsePort(const std::string& host_port);

// s3rdmafs.toml(5) in roff, rendered from the same field table.
std::string ConfigReferenceManPage(const std::string& version);

}  // namespace s3rdmafs::config
