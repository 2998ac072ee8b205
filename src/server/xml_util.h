// Small helpers the S3 handler writes its answers with: dates, query
// parsing, pugixml document building, continuation tokens.
#pragma once

#include <cstdint>
#include <map>
#include <pugixml.hpp>
#include <string>

namespace s3rdma::server::xml_util {

std::string HttpDate(int64_t ns);  // RFC 7231 (Last-Modified)
std::string Iso8601(int64_t ns);   // ListObjects' LastModified
std::map<std::string, std::string> ParseQuery(const std::string& raw);
std::string ToXml(const pugi::xml_document& doc);
// The document element `name` with the S3 namespace, after an XML declaration.
pugi::xml_node Root(pugi::xml_document& doc, const char* name);
void Text(pugi::xml_node parent, const char* name, const std::string& value);
// Continuation tokens are opaque to clients: the hex of the last key returned.
std::string EncodeToken(const std::string& key);
bool DecodeToken(const std::string& token, std::string* key);

}  // namespace s3rdma::server::xml_util
