#include "xml_util.h"

#include <ctime>
#include <sstream>

#include "s3rdmafs/s3/sigv4.h"

namespace s3rdma::server {

namespace s3 = s3rdmafs::s3;

namespace xml_util {

std::string HttpDate(int64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tmv;
  gmtime_r(&t, &tmv);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tmv);
  return buf;
}

std::string Iso8601(int64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tmv;
  gmtime_r(&t, &tmv);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900,
           tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec,
           static_cast<int>((ns / 1000000) % 1000));
  return buf;
}

std::map<std::string, std::string> ParseQuery(const std::string& raw) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t amp = raw.find('&', pos);
    std::string part = raw.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = part.find('=');
    std::string k, v;
    s3::UriDecode(part.substr(0, eq), &k, true);
    if (eq != std::string::npos) s3::UriDecode(part.substr(eq + 1), &v, true);
    if (!k.empty()) out[k] = v;
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

std::string ToXml(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw);
  return out.str();
}

pugi::xml_node Root(pugi::xml_document& doc, const char* name) {
  auto decl = doc.prepend_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  auto root = doc.append_child(name);
  root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
  return root;
}

void Text(pugi::xml_node parent, const char* name, const std::string& value) {
  parent.append_child(name).text().set(value.c_str());
}

// Continuation tokens are opaque to clients: the hex of the last key returned.
std::string EncodeToken(const std::string& key) { return s3::HexEncode(key); }
bool DecodeToken(const std::string& token, std::string* key) {
  if (token.size() % 2) return false;
  key->clear();
  for (size_t i = 0; i < token.size(); i += 2) {
    char* end;
    std::string byte = token.substr(i, 2);
    long v = strtol(byte.c_str(), &end, 16);
    if (*end) return false;
    key->push_back(static_cast<char>(v));
  }
  return true;
}

}  // namespace xml_util

}  // namespace s3rdma::server
