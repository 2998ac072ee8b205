#include "s3rdmafs/s3/xml.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <pugixml.hpp>
#include <sstream>

#include "s3rdmafs/s3/sigv4.h"

namespace s3rdmafs::s3 {

bool ParseIso8601(std::string_view text, int64_t* ns) {
  std::string s(text);
  std::tm tmv{};
  int frac_ms = 0;
  int y, mo, d, h, mi, sec;
  if (sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6) return false;
  size_t dot = s.find('.');
  if (dot != std::string::npos) {
    int digits = 0;
    for (size_t i = dot + 1;
         i < s.size() && isdigit(static_cast<unsigned char>(s[i])) && digits < 3; ++i, ++digits)
      frac_ms = frac_ms * 10 + (s[i] - '0');
    for (; digits < 3; ++digits) frac_ms *= 10;
  }
  tmv.tm_year = y - 1900;
  tmv.tm_mon = mo - 1;
  tmv.tm_mday = d;
  tmv.tm_hour = h;
  tmv.tm_min = mi;
  tmv.tm_sec = sec;
  *ns = static_cast<int64_t>(timegm(&tmv)) * 1000000000 + static_cast<int64_t>(frac_ms) * 1000000;
  return true;
}

bool ParseHttpDate(std::string_view text, int64_t* ns) {
  std::string s(text);
  std::tm tmv{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tmv);
  if (!end) return false;
  *ns = static_cast<int64_t>(timegm(&tmv)) * 1000000000;
  return true;
}

Result<ListPage> ParseListObjectsV2(std::string_view xml) {
  pugi::xml_document doc;
  pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size());
  if (!parsed)
    return MakeError(Errc::kProtocol,
                     std::string("malformed ListObjectsV2 XML: ") + parsed.description());
  pugi::xml_node root = doc.child("ListBucketResult");
  if (!root) return MakeError(Errc::kProtocol, "ListObjectsV2 response has no ListBucketResult");
  bool url_encoded = std::strcmp(root.child_value("EncodingType"), "url") == 0;
  auto text = [url_encoded](const char* raw) {
    std::string out;
    if (!url_encoded || !UriDecode(raw, &out, true)) out = raw;
    return out;
  };
  ListPage page;
  for (pugi::xml_node c : root.children("Contents")) {
    ObjectInfo info;
    info.key = text(c.child_value("Key"));
    info.etag = c.child_value("ETag");
    const char* size = c.child_value("Size");
    char* end = nullptr;
    info.size = strtoull(size, &end, 10);
    if (end == size)
      return MakeError(Errc::kProtocol, "ListObjectsV2: entry '" + info.key + "' has no Size");
    ParseIso8601(c.child_value("LastModified"), &info.mtime_ns);
    page.objects.push_back(std::move(info));
  }
  for (pugi::xml_node p : root.children("CommonPrefixes"))
    page.common_prefixes.push_back(text(p.child_value("Prefix")));
  if (std::strcmp(root.child_value("IsTruncated"), "true") == 0) {
    page.next_token = root.child_value("NextContinuationToken");
    if (page.next_token.empty())
      return MakeError(Errc::kProtocol,
                       "ListObjectsV2: truncated listing without NextContinuationToken");
  }
  return page;
}

S3ErrorBody ParseErrorBody(std::string_view xml) {
  S3ErrorBody out;
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return out;
  pugi::xml_node e = doc.child("Error");
  out.code = e.child_value("Code");
  out.message = e.child_value("Message");
  return out;
}

Result<std::string> ParseResultField(std::string_view xml, const char* root, const char* field,
                                     bool allow_empty) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size()))
    return MakeError(Errc::kProtocol, std::string(root) + ": malformed XML");
  if (pugi::xml_node e = doc.child("Error")) {
    std::string code = e.child_value("Code");
    Errc errc = code == "SlowDown"                                        ? Errc::kSlowDown
                : code == "InternalError" || code == "ServiceUnavailable" ? Errc::kServerError
                : code == "PreconditionFailed" ? Errc::kPreconditionFailed
                : code == "NoSuchKey"          ? Errc::kNoSuchKey
                : code == "NoSuchUpload"       ? Errc::kNoSuchUpload
                                               : Errc::kBadRequest;
    return MakeError(errc, std::string(root) + ": " + code + " (" + e.child_value("Message") + ")");
  }
  pugi::xml_node r = doc.child(root);
  if (!r) return MakeError(Errc::kProtocol, std::string("expected <") + root + ">");
  std::string value = r.child_value(field);
  if (value.empty() && !allow_empty)
    return MakeError(Errc::kProtocol, std::string(root) + " without " + field);
  return value;
}

std::string CompleteUploadXml(const std::vector<CompletedPart>& parts) {
  pugi::xml_document doc;
  auto root = doc.append_child("CompleteMultipartUpload");
  root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
  for (auto& p : parts) {
    auto node = root.append_child("Part");
    node.append_child("PartNumber").text().set(p.number);
    node.append_child("ETag").text().set(p.etag.c_str());
  }
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw | pugi::format_no_declaration);
  return out.str();
}

}  // namespace s3rdmafs::s3
