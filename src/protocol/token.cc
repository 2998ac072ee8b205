#include "s3rdmafs/protocol/token.h"

#include <cstdio>
#include <vector>

namespace s3rdmafs::rdma {
namespace {

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    size_t colon = s.find(':', pos);
    out.push_back(s.substr(pos, colon == std::string_view::npos ? s.npos : colon - pos));
    if (colon == std::string_view::npos) return out;
    pos = colon + 1;
  }
}

// Exactly `digits` hex digits.
bool Hex(std::string_view f, size_t digits, uint64_t* out) {
  if (f.size() != digits) return false;
  uint64_t v = 0;
  for (char c : f) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

tl::unexpected<Error> Malformed(const std::string& why) {
  return MakeError(Errc::kInvalidArgument, "malformed x-amz-rdma-token: " + why);
}

}  // namespace

std::string FormatToken(const DcToken& t) {
  char buf[160];
  int n = snprintf(buf, sizeof buf,
                   "%016llx:%08llx:%08x:%04x:%06x:%d:", static_cast<unsigned long long>(t.addr),
                   static_cast<unsigned long long>(t.size & 0xffffffffu), t.rkey, t.lid,
                   t.dctn & 0xffffffu, t.gid_present ? 1 : 0);
  for (uint8_t b : t.gid) n += snprintf(buf + n, sizeof buf - n, "%02x", b);
  if (t.suffixed)
    snprintf(buf + n, sizeof buf - n, ":%016llx:%016llx", static_cast<unsigned long long>(t.addr),
             static_cast<unsigned long long>(t.size));
  return buf;
}

std::string FormatToken(const RcToken& t) {
  char buf[64];
  snprintf(buf, sizeof buf, "rc1:%016llx:%016llx:%08x:%08x",
           static_cast<unsigned long long>(t.connection), static_cast<unsigned long long>(t.addr),
           t.size, t.rkey);
  return buf;
}

Result<Token> ParseToken(std::string_view text) {
  if (text.size() > 256) return Malformed("too long");
  auto f = Split(text);
  uint64_t v[6];
  if (!f.empty() && f[0] == "rc1") {
    if (f.size() != 5) return Malformed("RC form has 5 fields");
    if (!Hex(f[1], 16, &v[0]) || !Hex(f[2], 16, &v[1]) || !Hex(f[3], 8, &v[2]) ||
        !Hex(f[4], 8, &v[3]))
      return Malformed("RC field widths are 16:16:8:8 hex digits");
    if (v[2] == 0) return Malformed("empty window");
    return RcToken{v[0], v[1], static_cast<uint32_t>(v[2]), static_cast<uint32_t>(v[3])};
  }
  if (!f.empty() && !f[0].empty() && (f[0][0] == 'r' || f[0][0] == 'R'))
    return Malformed("unknown token form '" + std::string(f[0]) + "'");
  if (f.size() != 7 && f.size() != 9) return Malformed("DC form has 7 or 9 fields");
  DcToken t;
  uint64_t present;
  if (!Hex(f[0], 16, &v[0]) || !Hex(f[1], 8, &v[1]) || !Hex(f[2], 8, &v[2]) ||
      !Hex(f[3], 4, &v[3]) || !Hex(f[4], 6, &v[4]) || !Hex(f[5], 1, &present) || f[6].size() != 32)
    return Malformed("DC field widths are 16:8:8:4:6:1:32 hex digits");
  if (present > 1) return Malformed("gid_present must be 0 or 1");
  t.addr = v[0];
  t.size = v[1];
  t.rkey = static_cast<uint32_t>(v[2]);
  t.lid = static_cast<uint16_t>(v[3]);
  t.dctn = static_cast<uint32_t>(v[4]);
  t.gid_present = present == 1;
  for (int i = 0; i < 16; ++i) {
    uint64_t b;
    if (!Hex(f[6].substr(2 * static_cast<size_t>(i), 2), 2, &b))
      return Malformed("gid is 32 hex digits");
    t.gid[i] = static_cast<uint8_t>(b);
  }
  if (f.size() == 9) {  // the older form: the window comes from the suffix
    if (!Hex(f[7], 16, &t.addr) || !Hex(f[8], 16, &t.size))
      return Malformed("suffix is :016x:016x");
    t.suffixed = true;
  }
  if (t.size == 0) return Malformed("empty window");
  return t;
}

}  // namespace s3rdmafs::rdma
