#include <cerrno>

#include "s3rdmafs/fuse/fuse_mount.h"

namespace s3rdmafs::fuse {

int ErrnoFor(const Error& e) {
  switch (e.code) {
    case Errc::kInvalidArgument:
      return EINVAL;
    case Errc::kNotFound:
      return ENOENT;
    case Errc::kNoSuchKey:
      return ENOENT;
    case Errc::kNotDir:
      return ENOTDIR;
    case Errc::kIsDir:
      return EISDIR;
    case Errc::kNameTooLong:
      return ENAMETOOLONG;
    case Errc::kReadOnly:
      return EROFS;
    case Errc::kNoSpace:
      return ENOBUFS;  // the cache, not the disk, is full
    case Errc::kDiskFull:
      return ENOSPC;
    case Errc::kExists:
      return EEXIST;
    case Errc::kNotEmpty:
      return ENOTEMPTY;
    case Errc::kNotSupported:
      return EOPNOTSUPP;
    case Errc::kTooBig:
      return EFBIG;
    case Errc::kAccessDenied:
      return EACCES;
    case Errc::kNoSuchBucket:
      return ENOENT;
    case Errc::kTimedOut:
      return ETIMEDOUT;
    case Errc::kCancelled:
      return EINTR;
    case Errc::kPreconditionFailed:
      return ESTALE;  // the object changed under an open file
    case Errc::kInvalidRange:
      return EIO;
    case Errc::kNoSuchUpload:  // a commit whose upload vanished: nothing was saved
    case Errc::kSlowDown:
    case Errc::kServerError:
    case Errc::kConnection:
    case Errc::kProtocol:
    case Errc::kBadRequest:
    case Errc::kIo:
    case Errc::kConfig:
    case Errc::kInternal:
      return EIO;
  }
  return EIO;
}

}  // namespace s3rdmafs::fuse
