// s3rdmafs.toml(5), rendered from the field table: every key with its type,
// default, validation rule and meaning. The build writes the page from here,
// so it cannot drift from the code.
#include <map>

#include "fields.h"

namespace s3rdmafs::config {
namespace {

// Rules that Validate() enforces beyond the type, stated once for the page.
const std::map<std::string, const char*>& Rules() {
  static const std::map<std::string, const char*> rules = {
      {"s3.endpoint", "each (';'-separated) must start with http:// or https://"},
      {"s3.bucket", "required (here or as BUCKET on the command line)"},
      {"s3.region", "not empty"},
      {"s3.max_in_flight", "1..1024"},
      {"s3.max_metadata_in_flight", "1..1024"},
      {"s3.anonymous", "not together with s3.access_key"},
      {"s3.access_key", "together with s3.secret_key"},
      {"s3.secret_key", "together with s3.access_key"},
      {"cache.block_size", "a power of two, 64KiB..64MiB"},
      {"cache.size", "at least 16 blocks; with prefault, under 90% of the available memory"},
      {"readahead.max", ">= readahead.initial"},
      {"readahead.max_request", ">= cache.block_size"},
      {"readahead.streams_per_file", "1..64"},
      {"fuse.max_threads", "1..1024"},
      {"write.part_size", "5MiB..5GiB"},
      {"write.buffer_memory", ">= 2 x write.part_size"},
      {"write.staging_dir", "an absolute path"},
      {"write.max_file_size", "<= 10,000 x write.part_size"},
      {"rdma.endpoint", "ADDR:PORT, or one per s3.endpoint in its order"},
      {"rdma.reconnect_min", ">= 10ms"},
      {"rdma.reconnect_max", ">= rdma.reconnect_min"},
      {"rdma.required", "needs rdma.endpoint when rdma.transport is \"rc\""},
      {"log.level", "debug, info, warn or error"},
      {"metrics.listen",
       "a loopback address (127.0.0.1, ::1, localhost) with a port, or unix:/path"},
  };
  return rules;
}

const char* KindName(FieldKind k) {
  switch (k) {
    case FieldKind::kString:
      return "string";
    case FieldKind::kBool:
      return "boolean";
    case FieldKind::kUint:
      return "unsigned integer";
    case FieldKind::kInt:
      return "integer";
    case FieldKind::kSize:
      return "size";
    case FieldKind::kDuration:
      return "duration";
    case FieldKind::kMode:
      return "octal mode";
    case FieldKind::kEnum:
      return "one of";
  }
  return "value";
}

// roff needs backslashes doubled and a leading '.' or '\'' escaped.
std::string Roff(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '-')
      out += "\\-";
    else
      out.push_back(c);
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

}  // namespace

std::string ConfigReferenceManPage(const std::string& version) {
  Config defaults;
  std::string page = ".TH S3RDMAFS.TOML 5 \"2026\" \"s3rdmafs " + version + "\" \"File Formats\"\n";
  page +=
      ".SH NAME\ns3rdmafs.toml \\- configuration of an s3rdmafs mount\n"
      ".SH SYNOPSIS\n/etc/s3rdmafs/\\fINAME\\fR.toml\n"
      ".SH DESCRIPTION\nA TOML file of sections and keys; every key is optional and has the "
      "default shown. Unknown keys are errors, and every error in a file is reported at once. "
      "Any key can also be given on the command line as \\fB\\-o\\fR "
      "\\fIsection.key=value\\fR, which overrides the file. "
      "\\fBs3rdmafs \\-\\-print\\-config\\fR prints the effective configuration.\n"
      ".PP\nValue forms: sizes are \"64MiB\", \"1G\", \"4096\"; durations are \"500ms\", "
      "\"10s\", \"5m\", \"1h\"; modes are octal (\"0644\"). SIGHUP re-reads "
      "metadata.attr_ttl, metadata.entry_ttl, metadata.negative_ttl and log.level; every other "
      "key needs a remount.\n";
  std::string section;
  for (const Field& f : Fields()) {
    if (section != f.section) {
      section = f.section;
      page += ".SH [" + section + "]\n";
    }
    std::string key = section + "." + f.key;
    page += ".TP\n\\fB" + std::string(f.key) + "\\fR = " + Roff(f.get_text(defaults)) + " (" +
            KindName(f.kind) + ")\n" + Roff(f.doc) + ".";
    auto rule = Rules().find(key);
    if (rule != Rules().end()) page += " Rule: " + Roff(rule->second) + ".";
    if (f.secret) page += " A secret: masked by \\-\\-print\\-config.";
    page += "\n";
  }
  page +=
      ".SH EXAMPLE\n.nf\n[s3]\nendpoint = \"http://10.0.0.5:9000\"\nbucket = \"datasets\"\n"
      "prefix = \"imagenet\"\n\n[cache]\nsize = \"8GiB\"\n\n[rdma]\nendpoint = "
      "\"10.0.0.5:9010\"\n.fi\n"
      ".SH SEE ALSO\n.BR s3rdmafs (8),\n.BR mount.s3rdmafs (8),\n.BR s3rdmafs\\-semantics (7)\n";
  return page;
}

}  // namespace s3rdmafs::config
