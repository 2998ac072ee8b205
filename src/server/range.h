// HTTP Range header parsing for GET (single byte ranges, RFC 9110).
#pragma once

#include <cstdint>
#include <string>

namespace s3rdma::server {

// Parses a Range header value against an object size. Returns false when the
// header is not a single byte range we honour (then the whole object is sent);
// sets *unsatisfiable for a syntactically fine range outside the object.
bool ParseRange(const std::string& header, uint64_t size, uint64_t* first, uint64_t* last,
                bool* unsatisfiable);

// x-amz-copy-source-range: exactly "bytes=first-last", both within `size`
// (S3 clamps nothing here). A header that is not of that form is the
// client's bug (400 InvalidArgument); a well-formed range outside the source
// is 416 InvalidRange, as S3 tells the two apart.
enum class CopySourceRange { kOk, kMalformed, kOutside };
CopySourceRange ParseCopyRange(const std::string& header, uint64_t size, uint64_t* first,
                               uint64_t* last);

}  // namespace s3rdma::server
