#include "range.h"

#include <algorithm>
#include <cstdlib>

namespace s3rdma::server {

bool ParseRange(const std::string& h, uint64_t size, uint64_t* first, uint64_t* last,
                bool* unsatisfiable) {
  *unsatisfiable = false;
  if (h.rfind("bytes=", 0) != 0 || h.find(',') != std::string::npos) return false;
  std::string spec = h.substr(6);
  size_t dash = spec.find('-');
  if (dash == std::string::npos) return false;
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto num = [](const std::string& s, uint64_t* v) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
    *v = strtoull(s.c_str(), nullptr, 10);
    return true;
  };
  uint64_t x, y;
  if (a.empty()) {  // suffix: the last y bytes
    if (!num(b, &y)) return false;
    if (y == 0 || size == 0) {
      *unsatisfiable = true;
      return true;
    }
    *first = y >= size ? 0 : size - y;
    *last = size - 1;
    return true;
  }
  if (!num(a, &x)) return false;
  if (b.empty()) {
    y = size ? size - 1 : 0;
  } else if (!num(b, &y) || y < x) {
    return false;  // invalid ranges are ignored (RFC 9110): whole object
  }
  if (x >= size) {
    *unsatisfiable = true;
    return true;
  }
  *first = x;
  *last = std::min(y, size - 1);
  return true;
}

CopySourceRange ParseCopyRange(const std::string& h, uint64_t size, uint64_t* first,
                               uint64_t* last) {
  if (h.rfind("bytes=", 0) != 0) return CopySourceRange::kMalformed;
  std::string spec = h.substr(6);
  size_t dash = spec.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == spec.size())
    return CopySourceRange::kMalformed;
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.find_first_not_of("0123456789") != std::string::npos || a.size() > 19 ||
      b.find_first_not_of("0123456789") != std::string::npos || b.size() > 19)
    return CopySourceRange::kMalformed;
  *first = strtoull(a.c_str(), nullptr, 10);
  *last = strtoull(b.c_str(), nullptr, 10);
  if (*first > *last) return CopySourceRange::kMalformed;
  return *last < size ? CopySourceRange::kOk : CopySourceRange::kOutside;
}

}  // namespace s3rdma::server
