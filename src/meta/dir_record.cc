#include "s3rdmafs/meta/dir_record.h"

#include <array>
#include <charconv>
#include <optional>

namespace s3rdmafs::meta {
namespace {

constexpr std::string_view kHeader = "s3rdmafs-dir-record 1";
constexpr char kHex[] = "0123456789ABCDEF";

void Escape(std::string_view s, std::string* out) {
  for (unsigned char c : s) {
    if (c == '%' || c < 0x20 || c == 0x7f) {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
}

std::optional<std::string> Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    unsigned v = 0;
    if (s.size() - i < 3) return std::nullopt;
    auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || end != s.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

template <typename T>
bool Number(std::string_view s, T* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

void AppendId(const std::optional<uint32_t>& id, std::string* out) {
  if (id)
    *out += std::to_string(*id);
  else
    out->push_back('-');
}

}  // namespace

std::string EncodeDirRecord(const DirRecord& record) {
  std::string out(kHeader);
  out.push_back('\n');
  for (const auto& [name, e] : record) {
    Escape(name, &out);
    out.push_back('\t');
    Escape(e.etag, &out);
    out += '\t' + std::to_string(e.size) + '\t' + std::to_string(e.posix.mode) + '\t';
    AppendId(e.posix.uid, &out);
    out.push_back('\t');
    AppendId(e.posix.gid, &out);
    out += '\t' + std::to_string(e.posix.mtime_ns) + '\t' + std::to_string(e.posix.ctime_ns) +
           '\t' + std::to_string(e.posix.rdev) + '\t';
    Escape(e.link_target, &out);
    out += '\t' + std::to_string(e.posix.atime_ns) + '\n';
  }
  return out;
}

Result<DirRecord> DecodeDirRecord(std::string_view text) {
  const size_t eol = text.find('\n');
  if (text.substr(0, eol) != kHeader)
    return MakeError(Errc::kProtocol,
                     "directory record: the first line is not '" + std::string(kHeader) + "'");
  DirRecord out;
  size_t line_no = 1;
  size_t pos = eol == std::string_view::npos ? text.size() : eol + 1;
  while (pos < text.size()) {
    ++line_no;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos)
      return MakeError(Errc::kProtocol,
                       "directory record: line " + std::to_string(line_no) + " is cut short");
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    constexpr size_t kFields = 11;
    std::array<std::string_view, kFields> f;
    size_t n = 0;
    for (size_t start = 0;;) {
      size_t tab = line.find('\t', start);
      if (n == kFields)
        return MakeError(Errc::kProtocol, "directory record: line " + std::to_string(line_no) +
                                              " has more than 11 fields");
      f[n++] = line.substr(start, tab == std::string_view::npos ? tab : tab - start);
      if (tab == std::string_view::npos) break;
      start = tab + 1;
    }
    auto bad = [&](const char* what) {
      return MakeError(Errc::kProtocol,
                       "directory record: line " + std::to_string(line_no) + ": bad " + what);
    };
    if (n != kFields && n != kFields - 1) return bad("field count (want 10 or 11)");
    auto name = Unescape(f[0]);
    if (!name || name->empty()) return bad("name");
    auto etag = Unescape(f[1]);
    if (!etag) return bad("etag");
    RecordEntry e;
    e.etag = std::move(*etag);
    if (!Number(f[2], &e.size)) return bad("size");
    if (!Number(f[3], &e.posix.mode)) return bad("mode");
    for (auto [field, id] : {std::pair{f[4], &e.posix.uid}, std::pair{f[5], &e.posix.gid}}) {
      if (field == "-") continue;
      uint32_t v = 0;
      if (!Number(field, &v)) return bad("uid or gid");
      *id = v;
    }
    if (!Number(f[6], &e.posix.mtime_ns)) return bad("mtime_ns");
    if (!Number(f[7], &e.posix.ctime_ns)) return bad("ctime_ns");
    if (!Number(f[8], &e.posix.rdev)) return bad("rdev");
    auto target = Unescape(f[9]);
    if (!target) return bad("link_target");
    e.link_target = std::move(*target);
    if (n == kFields && !Number(f[10], &e.posix.atime_ns)) return bad("atime_ns");
    out.insert_or_assign(std::move(*name), std::move(e));
  }
  return out;
}

}  // namespace s3rdmafs::meta
