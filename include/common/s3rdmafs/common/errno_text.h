// The text of an errno value for messages. strerror() writes a shared
// buffer for unknown values (MT-Unsafe in glibc); the description table that
// strerrordesc_np reads is constant, so this is safe on any thread.
#pragma once

#include <cstring>

namespace s3rdmafs {

inline const char* ErrnoText(int err) {
  const char* text = strerrordesc_np(err);
  return text ? text : "unknown error";
}

}  // namespace s3rdmafs
