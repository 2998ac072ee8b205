#include "conditions.h"

#include <ctime>

namespace s3rdma::server {
namespace {

std::string Bare(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return etag;
}

// A comma-separated list of ETags (or "*") holding this object's.
bool Names(const std::string& list, const std::string& etag) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string one =
        list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t a = one.find_first_not_of(" \t"), b = one.find_last_not_of(" \t");
    one = a == std::string::npos ? "" : one.substr(a, b - a + 1);
    if (one.rfind("W/", 0) == 0) one.erase(0, 2);
    if (one == "*" || (!one.empty() && Bare(one) == Bare(etag))) return true;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

Conditions Conditions::Of(const Request& req, const std::string& prefix) {
  Conditions c;
  c.if_match = req.Header(prefix + "if-match");
  c.if_none_match = req.Header(prefix + "if-none-match");
  c.if_modified_since = req.Header(prefix + "if-modified-since");
  c.if_unmodified_since = req.Header(prefix + "if-unmodified-since");
  return c;
}

bool ParseHttpDate(const std::string& text, int64_t* seconds) {
  tm t{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &t);
  if (!end || *end != '\0') return false;
  *seconds = static_cast<int64_t>(timegm(&t));
  return true;
}

Verdict Evaluate(const Conditions& c, const ObjectMeta& object) {
  const int64_t modified = object.mtime_ns / 1000000000;
  int64_t at = 0;
  if (!c.if_match.empty()) {
    if (!Names(c.if_match, object.etag)) return Verdict::kFailed;
  } else if (!c.if_unmodified_since.empty() && ParseHttpDate(c.if_unmodified_since, &at) &&
             modified > at) {
    return Verdict::kFailed;
  }
  if (!c.if_none_match.empty()) {
    if (Names(c.if_none_match, object.etag)) return Verdict::kNotModified;
  } else if (!c.if_modified_since.empty() && ParseHttpDate(c.if_modified_since, &at) &&
             modified <= at) {
    return Verdict::kNotModified;
  }
  return Verdict::kProceed;
}

}  // namespace s3rdma::server
