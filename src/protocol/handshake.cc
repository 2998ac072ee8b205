#include "s3rdmafs/protocol/handshake.h"

#include <cstdio>
#include <cstring>

namespace s3rdmafs::rdma {
namespace {

bool HexBytes(const std::string& hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    unsigned v;
    if (sscanf(hex.c_str() + 2 * i, "%2x", &v) != 1) return false;
    out[i] = static_cast<uint8_t>(v);
  }
  return true;
}

}  // namespace

std::string HandshakeRequestBody(uint64_t addr, uint64_t size, uint32_t rkey) {
  char buf[96];
  snprintf(buf, sizeof buf, "region %016llx %016llx %08x\n", static_cast<unsigned long long>(addr),
           static_cast<unsigned long long>(size), rkey);
  return buf;
}

std::string FormatHandshakeReply(const Handshake& h) {
  char buf[80];
  int n = snprintf(buf, sizeof buf, "connection %016llx ticket ",
                   static_cast<unsigned long long>(h.connection));
  for (uint8_t b : h.ticket) n += snprintf(buf + n, sizeof buf - n, "%02x", b);
  return std::string(buf) + "\n";
}

Result<Handshake> ParseHandshakeReply(const std::string& text) {
  char id[17] = {}, ticket[33] = {};
  Handshake h;
  if (sscanf(text.c_str(), "connection %16s ticket %32s", id, ticket) != 2 ||
      sscanf(id, "%16llx", reinterpret_cast<unsigned long long*>(&h.connection)) != 1 ||
      !HexBytes(ticket, h.ticket.data(), 16))
    return MakeError(Errc::kProtocol, "malformed rdma-connect reply: '" + text.substr(0, 80) + "'");
  return h;
}

void EncodePrivateData(const Handshake& h, uint8_t* out) {
  memset(out, 0, kPrivateDataSize);
  static constexpr uint8_t kMagic[4] = {'S', '3', 'R', 'D'};  // no terminator on the wire
  memcpy(out, kMagic, sizeof kMagic);
  out[4] = 1;
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<uint8_t>(h.connection >> (56 - 8 * i));
  memcpy(out + 16, h.ticket.data(), 16);
}

bool DecodePrivateData(const uint8_t* d, size_t len, Handshake* h) {
  if (!d || len < kPrivateDataSize || memcmp(d, "S3RD", 4) != 0 || d[4] != 1) return false;
  h->connection = 0;
  for (int i = 0; i < 8; ++i) h->connection = (h->connection << 8) | d[8 + i];
  memcpy(h->ticket.data(), d + 16, 16);
  return true;
}

}  // namespace s3rdmafs::rdma
