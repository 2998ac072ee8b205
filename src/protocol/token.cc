#include "s3rdmafs/protocol/token.h"

#include <array>
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

// The DC descriptor's fields in wire order, with their widths in hex digits
// (versitygw and NooBaa read addr:size:rkey:lid:dctn:gid_present:gid; Ceph's
// documentation gives the same widths other names). A server that orders
// them otherwise is one edit here: both the parser and the formatter walk it.
enum class DcField { kAddr, kSize, kRkey, kLid, kDctn, kGidPresent, kGid };
struct DcFieldSpec {
  DcField field;
  size_t digits;
};
constexpr std::array<DcFieldSpec, 7> kDcFields = {{{DcField::kAddr, 16},
                                                   {DcField::kSize, 8},
                                                   {DcField::kRkey, 8},
                                                   {DcField::kLid, 4},
                                                   {DcField::kDctn, 6},
                                                   {DcField::kGidPresent, 1},
                                                   {DcField::kGid, 32}}};

std::string HexOf(uint64_t v, size_t digits) {
  std::string out(digits, '0');
  for (size_t i = digits; i-- > 0; v >>= 4) out[i] = "0123456789abcdef"[v & 15];
  return out;
}

std::string FieldText(const DcToken& t, const DcFieldSpec& spec) {
  switch (spec.field) {
    case DcField::kAddr:
      return HexOf(t.addr, spec.digits);
    case DcField::kSize:
      return HexOf(t.size & 0xffffffffu, spec.digits);
    case DcField::kRkey:
      return HexOf(t.rkey, spec.digits);
    case DcField::kLid:
      return HexOf(t.lid, spec.digits);
    case DcField::kDctn:
      return HexOf(t.dctn & 0xffffffu, spec.digits);
    case DcField::kGidPresent:
      return t.gid_present ? "1" : "0";
    case DcField::kGid: {
      std::string out;
      for (uint8_t b : t.gid) out += HexOf(b, 2);
      return out;
    }
  }
  return "";
}

// Reads one field; false (with *why) when its text is not that field.
bool SetField(DcToken* t, const DcFieldSpec& spec, std::string_view text, std::string* why) {
  uint64_t v = 0;
  if (spec.field == DcField::kGid) {
    if (text.size() != spec.digits) return (*why = "gid is 32 hex digits"), false;
    for (size_t i = 0; i < t->gid.size(); ++i) {
      if (!Hex(text.substr(2 * i, 2), 2, &v)) return (*why = "gid is 32 hex digits"), false;
      t->gid[i] = static_cast<uint8_t>(v);
    }
    return true;
  }
  if (!Hex(text, spec.digits, &v)) {
    *why = "DC field widths are 16:8:8:4:6:1:32 hex digits";
    return false;
  }
  switch (spec.field) {
    case DcField::kAddr:
      t->addr = v;
      break;
    case DcField::kSize:
      t->size = v;
      break;
    case DcField::kRkey:
      t->rkey = static_cast<uint32_t>(v);
      break;
    case DcField::kLid:
      t->lid = static_cast<uint16_t>(v);
      break;
    case DcField::kDctn:
      t->dctn = static_cast<uint32_t>(v);
      break;
    case DcField::kGidPresent:
      if (v > 1) return (*why = "gid_present must be 0 or 1"), false;
      t->gid_present = v == 1;
      break;
    case DcField::kGid:
      break;
  }
  return true;
}

}  // namespace

std::string FormatToken(const DcToken& t) {
  std::string out;
  for (const DcFieldSpec& spec : kDcFields) {
    if (!out.empty()) out += ':';
    out += FieldText(t, spec);
  }
  if (t.suffixed) out += ":" + HexOf(t.addr, 16) + ":" + HexOf(t.size, 16);
  return out;
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
  if (f.size() != kDcFields.size() && f.size() != kDcFields.size() + 2)
    return Malformed("DC form has 7 or 9 fields");
  DcToken t;
  std::string why;
  for (size_t i = 0; i < kDcFields.size(); ++i)
    if (!SetField(&t, kDcFields[i], f[i], &why)) return Malformed(why);
  if (f.size() == kDcFields.size() + 2) {  // the older form: the window comes from the suffix
    if (!Hex(f[7], 16, &t.addr) || !Hex(f[8], 16, &t.size))
      return Malformed("suffix is :016x:016x");
    t.suffixed = true;
  }
  if (t.size == 0) return Malformed("empty window");
  return t;
}

}  // namespace s3rdmafs::rdma
