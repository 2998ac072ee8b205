// libFuzzer: the x-amz-rdma-token parser never crashes, and whatever it
// accepts formats back to a token it accepts identically.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "s3rdmafs/protocol/token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  auto t = s3rdmafs::rdma::ParseToken(in);
  if (!t) return 0;
  std::string out = std::visit([](auto& x) { return s3rdmafs::rdma::FormatToken(x); }, *t);
  auto again = s3rdmafs::rdma::ParseToken(out);
  if (!again) abort();
  if (std::visit([](auto& x) { return s3rdmafs::rdma::FormatToken(x); }, *again) != out) abort();
  return 0;
}
