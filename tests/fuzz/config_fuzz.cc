// libFuzzer: the TOML config parser reports errors, never crashes.
#include <cstdint>
#include <string>

#include "s3rdmafs/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  auto c = s3rdmafs::config::ParseToml(in, "fuzz.toml");
  if (c) (void)s3rdmafs::config::Validate(*c);
  return 0;
}
