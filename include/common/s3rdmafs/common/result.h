// Errors as values. Every layer boundary returns Result<T>; exceptions never
// cross a C callback. Error codes are one list, grouped by the layer that
// produces them; the FUSE adapter maps them to errno in exactly one function
// (src/fuse/errno_map.cc).
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace s3rdmafs {

enum class Errc {
  // generic
  kInvalidArgument,
  kNotFound,
  kNotDir,
  kIsDir,
  kNameTooLong,
  kReadOnly,
  kNoSpace,       // the cache arena has no block to give (everything pinned)
  kDiskFull,      // the write staging directory is full (its bound or the disk)
  kExists,        // create/mkdir of a name that exists
  kNotEmpty,      // rmdir of a directory with entries
  kNotSupported,  // an operation this filesystem (or server) refuses by design
  kTooBig,        // a file over the configured size limit
  kIo,
  kTimedOut,
  kCancelled,
  kInternal,
  // config
  kConfig,
  // S3 service errors: kept distinct, they mean different things to a user.
  kAccessDenied,  // AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId
  kNoSuchBucket,
  kNoSuchKey,
  kNoSuchUpload,        // the multipart upload is gone (completed, aborted or expired)
  kPreconditionFailed,  // If-Match lost: the object changed under us
  kSlowDown,            // 503 SlowDown after the retry budget
  kInvalidRange,
  kServerError,  // 5xx after the retry budget
  kBadRequest,   // other 4xx
  // transport
  kConnection,  // cannot connect, connection reset, server gone mid-transfer
  kProtocol,    // the peer said something we cannot parse
};

const char* ErrcName(Errc code);

struct Error {
  Errc code = Errc::kInternal;
  std::string message;
  int http_status = 0;  // 0 when no HTTP response was involved
  // The S3 error code the server side answers with (InvalidPart,
  // BucketNotEmpty, ...) where `code` alone does not name it; with http_status.
  std::string s3_code;

  Error() = default;
  Error(Errc c, std::string msg, int status = 0)
      : code(c), message(std::move(msg)), http_status(status) {}
  std::string ToString() const;
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> MakeError(Errc code, std::string message, int http_status = 0) {
  return tl::unexpected<Error>(Error(code, std::move(message), http_status));
}

// An answer of the S3 server: `s3_code` and `http_status` say what goes out.
inline tl::unexpected<Error> MakeS3Error(int http_status, std::string s3_code,
                                         std::string message) {
  Error e(Errc::kBadRequest, std::move(message), http_status);
  e.s3_code = std::move(s3_code);
  return tl::unexpected<Error>(std::move(e));
}

}  // namespace s3rdmafs
