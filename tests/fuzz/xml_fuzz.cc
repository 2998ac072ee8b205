// libFuzzer: S3 XML documents (ListObjectsV2, Error) and ISO/HTTP dates.
#include <cstdint>
#include <string>

#include "s3rdmafs/s3/xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  (void)s3rdmafs::s3::ParseListObjectsV2(in);
  (void)s3rdmafs::s3::ParseErrorBody(in);
  int64_t ns;
  (void)s3rdmafs::s3::ParseIso8601(in, &ns);
  (void)s3rdmafs::s3::ParseHttpDate(in, &ns);
  return 0;
}
