#include "s3rdmafs/protocol/crc32c.h"

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include <algorithm>

namespace s3rdmafs::protocol {

void Crc32c::Update(const void* data, size_t n) {
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));  // ISA-L's signature; not written
  // crc32_iscsi takes an int length: large spans go in pieces.
  for (size_t done = 0; done < n;) {
    int take = static_cast<int>(std::min<size_t>(n - done, 1u << 30));
    crc_ = crc32_iscsi(p + done, take, crc_);
    done += take;
  }
}

std::string Crc32c::Base64() const {
  const uint32_t v = value();
  const unsigned char be[4] = {static_cast<unsigned char>(v >> 24),
                               static_cast<unsigned char>(v >> 16),
                               static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  unsigned char out[12] = {};
  int len = EVP_EncodeBlock(out, be, 4);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(len));
}

}  // namespace s3rdmafs::protocol
