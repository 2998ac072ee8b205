// libFuzzer: aws-chunked bodies. Never a crash; decoding does not depend on
// how the body is split into reads; what reaches the sink is what the
// decoder counts; a body that finishes cleanly has passed every signature.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "aws_chunked.h"

namespace {

struct Outcome {
  bool fed = false, finished = false;
  std::string payload;
  uint64_t counted = 0;
};

Outcome Decode(const std::string& body, bool signed_chunks, size_t step) {
  std::optional<s3rdma::server::AwsChunkedDecoder::Signing> signing;
  if (signed_chunks)  // a toy signer: the fuzzer can forge it, so both paths are reached
    signing = s3rdma::server::AwsChunkedDecoder::Signing{
        [](const std::string& sts) { return std::to_string(sts.size()); }, "seed", "date", "scope"};
  s3rdma::server::AwsChunkedDecoder d(std::move(signing));
  Outcome o;
  o.fed = true;
  for (size_t at = 0; at < body.size() && o.fed; at += step) {
    auto r =
        d.Feed(body.data() + at, std::min(step, body.size() - at), [&](const char* p, size_t n) {
          o.payload.append(p, n);
          return true;
        });
    o.fed = static_cast<bool>(r);
  }
  o.finished = o.fed && d.Finish();
  o.counted = d.decoded_bytes();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool signed_chunks = data[0] & 1;
  const size_t step = 1 + data[1] % 64;
  std::string body(reinterpret_cast<const char*>(data) + 2, size - 2);
  Outcome whole = Decode(body, signed_chunks, body.size() ? body.size() : 1);
  Outcome pieces = Decode(body, signed_chunks, step);
  if (whole.payload.size() != whole.counted || pieces.payload.size() != pieces.counted) abort();
  if (whole.finished != pieces.finished) abort();
  if (whole.finished && whole.payload != pieces.payload) abort();
  return 0;
}
