#include "s3rdmafs/meta/posix_meta.h"

#include <sys/stat.h>

#include <cstdlib>

namespace s3rdmafs::meta {
namespace {

bool ParseUint(const std::string& text, uint64_t max, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  char* end = nullptr;
  unsigned long long v = strtoull(text.c_str(), &end, 10);
  if (*end || v > max) return false;
  *out = v;
  return true;
}

// s3fs's form: seconds, optionally with a fraction.
bool ParseTime(const std::string& t, int64_t* out_ns) {
  size_t dot = t.find('.');
  uint64_t sec = 0, frac = 0;
  if (!ParseUint(t.substr(0, dot), uint64_t{1} << 40, &sec)) return false;
  int64_t ns = 0;
  if (dot != std::string::npos) {
    std::string digits = t.substr(dot + 1, 9);
    digits.append(9 - digits.size(), '0');
    if (ParseUint(digits, 999999999, &frac)) ns = static_cast<int64_t>(frac);
  }
  *out_ns = static_cast<int64_t>(sec) * 1000000000 + ns;
  return true;
}

std::string FormatTime(int64_t t_ns) {
  int64_t sec = t_ns / 1000000000, ns = t_ns % 1000000000;
  char buf[48];
  if (ns)
    snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(sec),
             static_cast<long long>(ns));
  else
    snprintf(buf, sizeof buf, "%lld", static_cast<long long>(sec));
  return buf;
}

}  // namespace

PosixMeta ParsePosixMeta(const s3::Metadata& meta) {
  PosixMeta p;
  uint64_t v = 0;
  if (auto it = meta.find("mode"); it != meta.end() && ParseUint(it->second, 0177777, &v))
    p.mode = static_cast<uint32_t>(v);
  if (auto it = meta.find("uid"); it != meta.end() && ParseUint(it->second, 0xffffffffu, &v))
    p.uid = static_cast<uint32_t>(v);
  if (auto it = meta.find("gid"); it != meta.end() && ParseUint(it->second, 0xffffffffu, &v))
    p.gid = static_cast<uint32_t>(v);
  if (auto it = meta.find("mtime"); it != meta.end()) ParseTime(it->second, &p.mtime_ns);
  if (auto it = meta.find("ctime"); it != meta.end()) ParseTime(it->second, &p.ctime_ns);
  if (auto it = meta.find("atime"); it != meta.end()) ParseTime(it->second, &p.atime_ns);
  if (auto it = meta.find("rdev"); it != meta.end()) ParseUint(it->second, ~uint64_t{0}, &p.rdev);
  return p;
}

void StorePosixMeta(const PosixMeta& p, s3::Metadata* meta) {
  if (p.mode) (*meta)["mode"] = std::to_string(p.mode);
  if (p.uid) (*meta)["uid"] = std::to_string(*p.uid);
  if (p.gid) (*meta)["gid"] = std::to_string(*p.gid);
  if (p.mtime_ns) (*meta)["mtime"] = FormatTime(p.mtime_ns);
  if (p.ctime_ns) (*meta)["ctime"] = FormatTime(p.ctime_ns);
  if (p.atime_ns) (*meta)["atime"] = FormatTime(p.atime_ns);
  if (p.rdev) (*meta)["rdev"] = std::to_string(p.rdev);
}

}  // namespace s3rdmafs::meta
