// The x-amz-rdma-token codec (docs/PROTOCOL.md has the grammar).
//
//  - DC "bare" form (cuObject, what commercial RDMA-S3 servers speak):
//      <addr:16>:<size:8>:<rkey:8>:<lid:4>:<dctn:6>:<gid_present:1>:<gid:32>   (81 chars)
//  - DC "suffixed" form: the bare form plus ":<addr:016x>:<size:016x>" (115 chars);
//    the window is taken from the last two fields.
//  - RC form (ours, for our server and fabrics without DC):
//      rc1:<connection:016x>:<addr:016x>:<size:08x>:<rkey:08x>             (55 chars)
//    It starts with "rc", which no DC token can (its first field is hex), so a
//    server tells the forms apart by shape.
// All hex is lowercase on output; input accepts either case.
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::rdma {

struct DcToken {
  uint64_t addr = 0;
  uint64_t size = 0;  // 32-bit on the wire in the bare form
  uint32_t rkey = 0;
  uint16_t lid = 0;
  uint32_t dctn = 0;  // 24 bits
  bool gid_present = false;
  std::array<uint8_t, 16> gid{};
  bool suffixed = false;  // parsed from / to be formatted as the 9-field form
};

struct RcToken {
  uint64_t connection = 0;
  uint64_t addr = 0;
  uint32_t size = 0;
  uint32_t rkey = 0;
};

using Token = std::variant<DcToken, RcToken>;

std::string FormatToken(const DcToken& token);
std::string FormatToken(const RcToken& token);
// kInvalidArgument for anything malformed (a server answers 400 InvalidRDMAToken).
Result<Token> ParseToken(std::string_view text);

}  // namespace s3rdmafs::rdma
