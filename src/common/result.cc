#include "s3rdmafs/common/result.h"

namespace s3rdmafs {

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument:
      return "InvalidArgument";
    case Errc::kNotFound:
      return "NotFound";
    case Errc::kNotDir:
      return "NotDir";
    case Errc::kIsDir:
      return "IsDir";
    case Errc::kNameTooLong:
      return "NameTooLong";
    case Errc::kReadOnly:
      return "ReadOnly";
    case Errc::kNoSpace:
      return "NoSpace";
    case Errc::kDiskFull:
      return "DiskFull";
    case Errc::kExists:
      return "Exists";
    case Errc::kNotEmpty:
      return "NotEmpty";
    case Errc::kNotSupported:
      return "NotSupported";
    case Errc::kTooBig:
      return "TooBig";
    case Errc::kIo:
      return "Io";
    case Errc::kTimedOut:
      return "TimedOut";
    case Errc::kCancelled:
      return "Cancelled";
    case Errc::kInternal:
      return "Internal";
    case Errc::kConfig:
      return "Config";
    case Errc::kAccessDenied:
      return "AccessDenied";
    case Errc::kNoSuchBucket:
      return "NoSuchBucket";
    case Errc::kNoSuchKey:
      return "NoSuchKey";
    case Errc::kNoSuchUpload:
      return "NoSuchUpload";
    case Errc::kPreconditionFailed:
      return "PreconditionFailed";
    case Errc::kSlowDown:
      return "SlowDown";
    case Errc::kInvalidRange:
      return "InvalidRange";
    case Errc::kServerError:
      return "ServerError";
    case Errc::kBadRequest:
      return "BadRequest";
    case Errc::kConnection:
      return "Connection";
    case Errc::kProtocol:
      return "Protocol";
  }
  return "Unknown";
}

std::string Error::ToString() const {
  std::string s = ErrcName(code);
  if (http_status) s += " (HTTP " + std::to_string(http_status) + ")";
  if (!message.empty()) s += ": " + message;
  return s;
}

}  // namespace s3rdmafs
