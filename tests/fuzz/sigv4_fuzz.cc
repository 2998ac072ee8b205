// libFuzzer: SigV4 canonicalisation of query strings and URI decoding; a
// decoded-then-encoded name decodes back to itself.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "s3rdmafs/s3/sigv4.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  (void)s3rdmafs::s3::CanonicalQueryString(in);
  std::string decoded, again;
  if (s3rdmafs::s3::UriDecode(in, &decoded)) {
    std::string encoded = s3rdmafs::s3::UriEncode(decoded, true);
    if (!s3rdmafs::s3::UriDecode(encoded, &again) || again != decoded) abort();
  }
  return 0;
}
