// The RC binding handshake's wire forms, which client and server must agree
// on (docs/PROTOCOL.md): the signed rdma-connect request body and reply, and
// the private data of rdma_connect. Part of the leaf `protocol` library,
// with the token codec: no verbs, no HTTP.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::rdma {

struct Handshake {
  uint64_t connection = 0;
  std::array<uint8_t, 16> ticket{};
};

std::string HandshakeRequestBody(uint64_t addr, uint64_t size, uint32_t rkey);
Result<Handshake> ParseHandshakeReply(const std::string& text);
std::string FormatHandshakeReply(const Handshake& h);
// Private data of rdma_connect: "S3RD", version 1, 3 pad bytes, id (8, big-endian), ticket (16).
inline constexpr size_t kPrivateDataSize = 32;
void EncodePrivateData(const Handshake& h, uint8_t* out);
bool DecodePrivateData(const uint8_t* data, size_t len, Handshake* out);

}  // namespace s3rdmafs::rdma
