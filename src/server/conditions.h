// Conditional requests (RFC 9110 section 13, as S3 applies them): If-Match,
// If-Unmodified-Since, If-None-Match and If-Modified-Since on GET and HEAD,
// and their x-amz-copy-source-if-* forms on CopyObject and UploadPartCopy.
#pragma once

#include <cstdint>
#include <string>

#include "exchange.h"
#include "local_backend.h"

namespace s3rdma::server {

struct Conditions {
  std::string if_match, if_none_match, if_modified_since, if_unmodified_since;
  // `prefix` "" reads If-Match ...; "x-amz-copy-source-" reads the copy forms.
  static Conditions Of(const Request& req, const std::string& prefix = "");
};

enum class Verdict { kProceed, kNotModified, kFailed };

// If-Match decides over If-Unmodified-Since, If-None-Match over
// If-Modified-Since; dates compare at one-second resolution; an unparsable
// date is ignored (RFC 9110).
Verdict Evaluate(const Conditions& c, const ObjectMeta& object);

// RFC 9110 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"): seconds since 1970.
bool ParseHttpDate(const std::string& text, int64_t* seconds);

}  // namespace s3rdma::server
