#include "fields.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "s3rdmafs/common/size_parse.h"

namespace s3rdmafs::config {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

std::string SizeText(uint64_t v) {
  const char* units[] = {"", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && v != 0 && v % 1024 == 0) {
    v /= 1024;
    ++u;
  }
  return "\"" + std::to_string(v) + units[u] + "\"";
}

std::string DurationText(uint64_t ms) {
  if (ms % 1000 == 0) return "\"" + std::to_string(ms / 1000) + "s\"";
  return "\"" + std::to_string(ms) + "ms\"";
}

template <typename Get>
Field Str(const char* s, const char* k, const char* doc, Get get, bool secret = false) {
  return Field{s,
               k,
               FieldKind::kString,
               doc,
               secret,
               [get](Config& c, const std::string& v) {
                 get(c) = v;
                 return std::string();
               },
               [get](const Config& c) { return Quote(get(const_cast<Config&>(c))); }};
}

// A string that must be one of `choices` (the error names them all).
template <typename Get>
Field OneOf(const char* s, const char* k, const char* doc, const std::vector<std::string>& choices,
            Get get) {
  return Field{s,
               k,
               FieldKind::kEnum,
               doc,
               false,
               [get, choices](Config& c, const std::string& v) {
                 if (std::find(choices.begin(), choices.end(), v) != choices.end()) {
                   get(c) = v;
                   return std::string();
                 }
                 std::string want;
                 for (size_t i = 0; i < choices.size(); ++i)
                   want += (i == 0                    ? ""
                            : i + 1 == choices.size() ? " or "
                                                      : ", ") +
                           ("\"" + choices[i] + "\"");
                 return "expected " + want + ", got '" + v + "'";
               },
               [get](const Config& c) { return "\"" + get(const_cast<Config&>(c)) + "\""; }};
}

template <typename Get>
Field Bool(const char* s, const char* k, const char* doc, Get get) {
  return Field{s,
               k,
               FieldKind::kBool,
               doc,
               false,
               [get](Config& c, const std::string& v) {
                 if (v == "true" || v == "1" || v == "yes")
                   get(c) = true;
                 else if (v == "false" || v == "0" || v == "no")
                   get(c) = false;
                 else
                   return std::string("expected true or false, got '" + v + "'");
                 return std::string();
               },
               [get](const Config& c) {
                 return std::string(get(const_cast<Config&>(c)) ? "true" : "false");
               }};
}

template <typename Get>
Field Uint(const char* s, const char* k, const char* doc, Get get) {
  return Field{s,
               k,
               FieldKind::kUint,
               doc,
               false,
               [get](Config& c, const std::string& v) {
                 char* end = nullptr;
                 if (v.empty() || v[0] == '-')
                   return std::string("expected a non-negative integer, got '" + v + "'");
                 unsigned long long x = strtoull(v.c_str(), &end, 10);
                 if (*end) return std::string("expected a non-negative integer, got '" + v + "'");
                 get(c) = x;
                 return std::string();
               },
               [get](const Config& c) { return std::to_string(get(const_cast<Config&>(c))); }};
}

template <typename Get>
Field Int(const char* s, const char* k, const char* doc, Get get) {
  return Field{s,
               k,
               FieldKind::kInt,
               doc,
               false,
               [get](Config& c, const std::string& v) {
                 char* end = nullptr;
                 long long x = strtoll(v.c_str(), &end, 10);
                 if (v.empty() || *end) return std::string("expected an integer, got '" + v + "'");
                 get(c) = x;
                 return std::string();
               },
               [get](const Config& c) { return std::to_string(get(const_cast<Config&>(c))); }};
}

template <typename Get>
Field Size(const char* s, const char* k, const char* doc, Get get) {
  return Field{s,
               k,
               FieldKind::kSize,
               doc,
               false,
               [get](Config& c, const std::string& v) {
                 auto r = ParseSize(v);
                 if (!r) return r.error().message;
                 get(c) = *r;
                 return std::string();
               },
               [get](const Config& c) { return SizeText(get(const_cast<Config&>(c))); }};
}

template <typename Get>
Field Duration(const char* s, const char* k, const char* doc, Get get) {
  return Field{s,
               k,
               FieldKind::kDuration,
               doc,
               false,
               [get](Config& c, const std::string& v) {
                 auto r = ParseDurationMs(v);
                 if (!r) return r.error().message;
                 get(c) = *r;
                 return std::string();
               },
               [get](const Config& c) { return DurationText(get(const_cast<Config&>(c))); }};
}

template <typename Get>
Field Mode(const char* s, const char* k, const char* doc, Get get) {
  return Field{s,
               k,
               FieldKind::kMode,
               doc,
               false,
               [get](Config& c, const std::string& v) {
                 char* end = nullptr;
                 unsigned long x = strtoul(v.c_str(), &end, 8);
                 if (v.empty() || *end || x > 07777)
                   return std::string("expected an octal mode like \"0444\", got '" + v + "'");
                 get(c) = x;
                 return std::string();
               },
               [get](const Config& c) {
                 char b[16];
                 snprintf(b, sizeof b, "\"%04llo\"",
                          static_cast<unsigned long long>(get(const_cast<Config&>(c))));
                 return std::string(b);
               }};
}

std::vector<Field> MakeFields() {
  std::vector<Field> f;
  f.push_back(Str(
      "s3", "endpoint",
      "S3 endpoint URL, http:// or https://; several, separated by ';' (gateways in "
      "front of one store), spread requests over them and fail over",
      [](Config & c) -> auto& { return c.s3.endpoint; }));
  f.push_back(Str(
      "s3", "region", "region used for SigV4 signing",
      [](Config & c) -> auto& { return c.s3.region; }));
  f.push_back(Str(
      "s3", "bucket", "bucket to mount (the command line's bucket[:/prefix] sets it)",
      [](Config & c) -> auto& { return c.s3.bucket; }));
  f.push_back(Str(
      "s3", "prefix", "mount only the keys under this prefix",
      [](Config & c) -> auto& { return c.s3.prefix; }));
  f.push_back(Field{"s3", "addressing", FieldKind::kEnum,
                    "\"path\" (endpoint/bucket/key) or \"virtual\" (bucket.endpoint/key)", false,
                    [](Config& c, const std::string& v) {
                      if (v == "path")
                        c.s3.addressing = Addressing::kPath;
                      else if (v == "virtual")
                        c.s3.addressing = Addressing::kVirtual;
                      else
                        return std::string("expected \"path\" or \"virtual\", got '" + v + "'");
                      return std::string();
                    },
                    [](const Config& c) {
                      return std::string(c.s3.addressing == Addressing::kPath ? "\"path\""
                                                                              : "\"virtual\"");
                    }});
  f.push_back(Str(
      "s3", "ca_bundle", "PEM CA bundle for HTTPS (default: the system's)",
      [](Config & c) -> auto& { return c.s3.ca_bundle; }));
  f.push_back(Bool(
      "s3", "anonymous", "send unsigned requests (public buckets)",
      [](Config & c) -> auto& { return c.s3.anonymous; }));
  f.push_back(Str(
      "s3", "access_key", "access key id (else environment, then shared credentials file)",
      [](Config & c) -> auto& { return c.s3.access_key; }, true));
  f.push_back(Str(
      "s3", "secret_key", "secret access key", [](Config & c) -> auto& { return c.s3.secret_key; },
      true));
  f.push_back(Str(
      "s3", "session_token", "session token for temporary credentials",
      [](Config & c) -> auto& { return c.s3.session_token; }, true));
  f.push_back(Str(
      "s3", "profile",
      "profile in ~/.aws/credentials and ~/.aws/config (default $AWS_PROFILE or \"default\")",
      [](Config & c) -> auto& { return c.s3.profile; }));
  f.push_back(Uint(
      "s3", "max_in_flight", "most data requests (object bytes) in flight at once",
      [](Config & c) -> auto& { return c.s3.max_in_flight; }));
  f.push_back(Uint(
      "s3", "max_metadata_in_flight",
      "most metadata requests (HEAD, LIST, ...) in flight at once, beside the data ones",
      [](Config & c) -> auto& { return c.s3.max_metadata_in_flight; }));
  f.push_back(Uint(
      "s3", "max_retries",
      "retries after a 5xx, SlowDown or connection error (never after other 4xx)",
      [](Config & c) -> auto& { return c.s3.max_retries; }));
  f.push_back(Duration(
      "s3", "retry_base_delay", "first retry back-off; doubles each time, with jitter",
      [](Config & c) -> auto& { return c.s3.retry_base_delay_ms; }));
  f.push_back(Duration(
      "s3", "retry_max_delay", "longest back-off between two retries",
      [](Config & c) -> auto& { return c.s3.retry_max_delay_ms; }));
  f.push_back(Duration(
      "s3", "connect_timeout", "TCP/TLS connect timeout",
      [](Config & c) -> auto& { return c.s3.connect_timeout_ms; }));
  f.push_back(Duration(
      "s3", "low_speed_timeout", "abort (and retry) a transfer that moves no data for this long",
      [](Config & c) -> auto& { return c.s3.low_speed_timeout_ms; }));
  f.push_back(Bool(
      "s3", "direct_receive",
      "ranged GETs over plain http:// read the socket straight into cache blocks (off: libcurl "
      "receives them, one copy more)",
      [](Config & c) -> auto& { return c.s3.direct_receive; }));
  f.push_back(Duration(
      "s3", "startup_timeout",
      "the start-up check fails the mount when the endpoint has not answered by then",
      [](Config & c) -> auto& { return c.s3.startup_timeout_ms; }));
  f.push_back(Bool(
      "s3", "startup_check", "check endpoint, credentials and bucket before mounting",
      [](Config & c) -> auto& { return c.s3.startup_check; }));
  f.push_back(Size(
      "cache", "size", "page-cache arena size: the daemon's data memory, allocated once",
      [](Config & c) -> auto& { return c.cache.size; }));
  f.push_back(Size(
      "cache", "block_size", "cache block size (power of two, 64KiB..64MiB)",
      [](Config & c) -> auto& { return c.cache.block_size; }));
  f.push_back(Bool(
      "cache", "hugepages", "back the arena with huge pages when the system allows",
      [](Config & c) -> auto& { return c.cache.hugepages; }));
  f.push_back(Bool(
      "cache", "prefault",
      "touch the whole arena at start (steady speed from the first read; RSS = cache.size)",
      [](Config & c) -> auto& { return c.cache.prefault; }));
  f.push_back(Duration(
      "cache", "wait_timeout", "longest a read waits for a free cache block before EIO",
      [](Config & c) -> auto& { return c.cache.wait_timeout_ms; }));
  f.push_back(Size(
      "readahead", "initial", "first read-ahead window of a sequential stream",
      [](Config & c) -> auto& { return c.readahead.initial; }));
  f.push_back(Size(
      "readahead", "max", "largest read-ahead window (doubles up to this)",
      [](Config & c) -> auto& { return c.readahead.max; }));
  f.push_back(Size(
      "readahead", "max_request", "largest single ranged GET",
      [](Config & c) -> auto& { return c.readahead.max_request; }));
  f.push_back(Uint(
      "readahead", "streams_per_file", "sequential streams tracked per file (readers of one file)",
      [](Config & c) -> auto& { return c.readahead.streams_per_file; }));
  f.push_back(Duration(
      "metadata", "attr_ttl", "how long file attributes are trusted",
      [](Config & c) -> auto& { return c.metadata.attr_ttl_ms; }));
  f.push_back(Duration(
      "metadata", "entry_ttl", "how long a name -> inode mapping is trusted",
      [](Config & c) -> auto& { return c.metadata.entry_ttl_ms; }));
  f.push_back(Duration(
      "metadata", "negative_ttl", "how long a missing name is remembered as missing",
      [](Config & c) -> auto& { return c.metadata.negative_ttl_ms; }));
  f.push_back(Bool(
      "metadata", "object_attributes",
      "take mode, owner and mtime from x-amz-meta-* (s3fs's headers; one HEAD per file on first "
      "stat). false: fuse.file_mode for all, and `ls -l` of a huge directory is LISTs only",
      [](Config & c) -> auto& { return c.metadata.object_attributes; }));
  f.push_back(OneOf(
      "metadata", "listing",
      "what a listing (`ls -l`) shows of x-amz-meta-* attributes. \"records\": what the "
      "directory's attribute record says, one GET per listing, kept up to date by the mounts "
      "that write there; files it does not vouch for (other tools' writes) show the listing's "
      "size and mtime until their own lookup, open or stat. \"heads\": a HEAD per listed file",
      {"records", "heads"}, [](Config & c) -> auto& { return c.metadata.listing; }));
  f.push_back(Size(
      "metadata", "small_file_read",
      "files this small by their listing come whole, into the cache, with the request that "
      "reads their attributes (a ranged GET instead of a HEAD): one request per cold small file "
      "read. Their bytes are then cached like any read: within metadata.attr_ttl an open does "
      "not see another client's overwrite. 0 (default): HEADs",
      [](Config & c) -> auto& { return c.metadata.small_file_read; }));
  f.push_back(Duration(
      "metadata", "idle_forget",
      "inodes untouched this long are released: the kernel is asked to forget them, and what "
      "it no longer holds is dropped (memory comes back after a scan of a huge tree)",
      [](Config & c) -> auto& { return c.metadata.idle_forget_ms; }));
  f.push_back(Uint(
      "metadata", "max_inodes",
      "past this many inodes (about 400 bytes each) the least recently used are released "
      "early; open and unsaved files never are",
      [](Config & c) -> auto& { return c.metadata.max_inodes; }));
  f.push_back(Bool(
      "fuse", "allow_other", "let other users access the mount (needs user_allow_other)",
      [](Config & c) -> auto& { return c.fuse.allow_other; }));
  f.push_back(Bool(
      "fuse", "direct_io", "bypass the kernel page cache (streaming readers)",
      [](Config & c) -> auto& { return c.fuse.direct_io; }));
  f.push_back(Bool(
      "fuse", "splice_reads",
      "with direct_io over http://, sequential readers get the bytes straight from the socket "
      "(splice), past the cache: about half the CPU per GiB. Needs a 4 MiB pipe (root, or "
      "fs.pipe-max-size); off without one",
      [](Config & c) -> auto& { return c.fuse.splice_reads; }));
  f.push_back(Uint(
      "fuse", "max_threads", "most FUSE worker threads",
      [](Config & c) -> auto& { return c.fuse.max_threads; }));
  f.push_back(Size(
      "fuse", "read_ahead",
      "the kernel's read-ahead window for this mount (its read_ahead_kb; FUSE's own is 128K): "
      "page-cache reads then come as 1 MiB requests, several in flight. Needs root; 0: leave "
      "the kernel's",
      [](Config & c) -> auto& { return c.fuse.read_ahead; }));
  f.push_back(Duration(
      "fuse", "read_timeout",
      "every read answers within this, with ETIMEDOUT when the data has not come (retries "
      "included)",
      [](Config & c) -> auto& { return c.fuse.read_timeout_ms; }));
  f.push_back(Int(
      "fuse", "uid", "owner of every file (-1: the mounting user)",
      [](Config & c) -> auto& { return c.fuse.uid; }));
  f.push_back(Int(
      "fuse", "gid", "group of every file (-1: the mounting user's group)",
      [](Config & c) -> auto& { return c.fuse.gid; }));
  f.push_back(Mode(
      "fuse", "file_mode", "permission bits of files",
      [](Config & c) -> auto& { return c.fuse.file_mode; }));
  f.push_back(Mode(
      "fuse", "dir_mode", "permission bits of directories",
      [](Config & c) -> auto& { return c.fuse.dir_mode; }));
  f.push_back(Bool(
      "write", "enabled", "allow writes (false: a read-only mount, EROFS)",
      [](Config & c) -> auto& { return c.write.enabled; }));
  f.push_back(Size(
      "write", "part_size", "multipart part size (5MiB..5GiB; also the single-PUT limit)",
      [](Config & c) -> auto& { return c.write.part_size; }));
  f.push_back(Size(
      "write", "buffer_memory",
      "registered memory for parts in flight, shared by all writers (>= 2 x write.part_size)",
      [](Config & c) -> auto& { return c.write.buffer_memory; }));
  f.push_back(Bool(
      "write", "streaming",
      "upload finished parts while a file is written (false: everything at close)",
      [](Config & c) -> auto& { return c.write.streaming; }));
  f.push_back(OneOf(
      "write", "conflict",
      "\"detect\": a commit over an object sends If-Match with the ETag seen at open, and close "
      "fails with ESTALE when another client replaced it; \"overwrite\": the last close wins",
      {"detect", "overwrite"}, [](Config & c) -> auto& { return c.write.conflict; }));
  f.push_back(Str(
      "write", "staging_dir",
      "local directory holding every file being written until it is saved (cleaned at start)",
      [](Config & c) -> auto& { return c.write.staging_dir; }));
  f.push_back(Size(
      "write", "staging_max",
      "most bytes staged at once; past it, parts already uploaded are dropped, then writes fail "
      "with ENOSPC",
      [](Config & c) -> auto& { return c.write.staging_max; }));
  f.push_back(Size(
      "write", "max_file_size",
      "largest file a write may make, EFBIG past it (0: 10,000 x write.part_size)",
      [](Config & c) -> auto& { return c.write.max_file_size; }));
  f.push_back(OneOf(
      "rdma", "transport",
      "\"rc\" (our RC protocol; needs rdma.endpoint) or \"dc\" (mlx5 DC, commercial servers; "
      "untested on hardware)",
      {"rc", "dc"}, [](Config & c) -> auto& { return c.rdma.transport; }));
  f.push_back(Str(
      "rdma", "device", "RDMA device for the DC target (empty: the first)",
      [](Config & c) -> auto& { return c.rdma.device; }));
  f.push_back(Uint(
      "rdma", "port", "port of rdma.device for the DC target (1 on single-port NICs)",
      [](Config & c) -> auto& { return c.rdma.port; }));
  f.push_back(Uint(
      "rdma", "dc_access_key", "DC access key shared with the server (never sent in tokens)",
      [](Config & c) -> auto& { return c.rdma.dc_access_key; }));
  f.push_back(Bool(
      "rdma", "dc_suffixed_token", "send the older 9-field DC token form (some servers and SDKs)",
      [](Config & c) -> auto& { return c.rdma.dc_suffixed_token; }));
  f.push_back(Str(
      "rdma", "endpoint",
      "ADDR:PORT of the server's RDMA (RC) listener, or one per s3.endpoint (';'); several "
      "addresses of one server as rails: ADDR:PORT|ADDR:PORT; empty: HTTP only",
      [](Config & c) -> auto& { return c.rdma.endpoint; }));
  f.push_back(Uint(
      "rdma", "connections",
      "RC connections (QPs) to each RDMA address; requests take them in turn (1..16)",
      [](Config & c) -> auto& { return c.rdma.connections; }));
  f.push_back(Bool(
      "rdma", "required", "fail the mount when RDMA cannot be set up, instead of using HTTP",
      [](Config & c) -> auto& { return c.rdma.required; }));
  f.push_back(Bool(
      "rdma", "memory_windows",
      "RC: a memory window per request, so a token reaches only its own request's bytes and only "
      "until its reply (used when the device has type 2 windows)",
      [](Config & c) -> auto& { return c.rdma.memory_windows; }));
  f.push_back(Duration(
      "rdma", "declined_backoff", "after a server declines RDMA, use HTTP for this long",
      [](Config & c) -> auto& { return c.rdma.declined_backoff_ms; }));
  f.push_back(Duration(
      "rdma", "reconnect_min",
      "a lost RDMA connection is remade in the background after this pause, doubling per failure",
      [](Config & c) -> auto& { return c.rdma.reconnect_min_ms; }));
  f.push_back(Duration(
      "rdma", "reconnect_max", "longest pause between RDMA reconnect attempts",
      [](Config & c) -> auto& { return c.rdma.reconnect_max_ms; }));
  f.push_back(Str(
      "log", "level", "debug, info, warn or error",
      [](Config & c) -> auto& { return c.log.level; }));
  f.push_back(Str(
      "log", "stats_file", "counters (bytes by transport, fallbacks, cache) rewritten every second",
      [](Config & c) -> auto& { return c.log.stats_file; }));
  f.push_back(Str(
      "metrics", "listen",
      "serve GET /metrics (Prometheus text) here: a loopback HOST:PORT or unix:/path; empty: off",
      [](Config & c) -> auto& { return c.metrics.listen; }));
  return f;
}

}  // namespace

const std::vector<Field>& Fields() {
  static const std::vector<Field> fields = MakeFields();
  return fields;
}

}  // namespace s3rdmafs::config
