#include "exchange.h"

#include <cctype>

namespace s3rdma::server {
namespace {
bool NameIs(const std::string& header, std::string_view lowercase) {
  if (header.size() != lowercase.size()) return false;
  for (size_t i = 0; i < header.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != lowercase[i]) return false;
  return true;
}
}  // namespace

std::string Request::Header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (NameIs(k, name)) return v;
  return "";
}

bool Request::HasHeader(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (NameIs(k, name)) return true;
  return false;
}

}  // namespace s3rdma::server
