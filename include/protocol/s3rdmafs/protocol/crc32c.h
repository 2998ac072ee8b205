// CRC-32C as S3 carries it (x-amz-checksum-crc32c: base64 of the big-endian
// value), which client and server must compute alike: the mount sends it
// with every RDMA upload and the server checks the bytes it RDMA-READ
// against it before they are stored. ISA-L's crc32_iscsi (SSE4.2/PCLMUL).
// Part of the leaf `protocol` library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace s3rdmafs::protocol {

class Crc32c {
 public:
  void Update(const void* data, size_t n);
  uint32_t value() const { return crc_ ^ 0xFFFFFFFFu; }
  std::string Base64() const;  // the header's value

 private:
  uint32_t crc_ = 0xFFFFFFFFu;
};

inline std::string Crc32cBase64(const void* data, size_t n) {
  Crc32c c;
  c.Update(data, n);
  return c.Base64();
}

}  // namespace s3rdmafs::protocol
