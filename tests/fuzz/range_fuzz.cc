// libFuzzer: Range headers; an accepted range always lies inside the object.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "range.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t object_size;
  memcpy(&object_size, data, 8);
  object_size %= (1ull << 40);
  std::string h(reinterpret_cast<const char*>(data) + 8, size - 8);
  uint64_t first = 0, last = 0;
  bool unsatisfiable = false;
  if (s3rdma::server::ParseRange(h, object_size, &first, &last, &unsatisfiable) && !unsatisfiable) {
    if (first > last || last >= object_size) abort();
  }
  return 0;
}
