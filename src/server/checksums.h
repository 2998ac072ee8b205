// S3's additional checksums (x-amz-checksum-crc32, -crc32c, -crc64nvme,
// -sha1, -sha256): computed over a body as it streams in, compared with what
// the client sent, kept with the object and returned when asked
// (x-amz-checksum-mode: ENABLED). CRC32 and CRC32C come from ISA-L;
// CRC64/NVME from Boost.CRC's table (Debian 12's ISA-L 2.30 has no
// crc64_rocksoft); SHA-1 and SHA-256 from OpenSSL.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "exchange.h"
#include "s3rdmafs/common/result.h"

namespace s3rdma::server {

class Checksum {
 public:
  // The header this algorithm travels in ("x-amz-checksum-crc32", ...), or
  // nullptr for a name that is none of S3's ("crc32", "CRC32C", ...).
  static std::unique_ptr<Checksum> Named(const std::string& algorithm);
  virtual ~Checksum() = default;
  virtual void Update(const char* data, size_t n) = 0;
  virtual std::string Base64() = 0;  // of the big-endian digest, as S3 writes it
  const std::string& header() const { return header_; }

 protected:
  std::string header_;
};

// The checksum a request asks to be checked: its one x-amz-checksum-* header
// (the value to compare) or x-amz-sdk-checksum-algorithm alone (computed and
// kept, nothing to compare). No checksum: nullopt. More than one, or an
// unknown algorithm: 400 InvalidRequest.
struct WantedChecksum {
  std::unique_ptr<Checksum> sum;
  std::string expected;  // base64; "" = compute only
};
s3rdmafs::Result<std::optional<WantedChecksum>> ChecksumOf(const Request& req);
// An aws-chunked body's trailer checksum (x-amz-trailer names it, its value
// comes last): *wanted becomes it unless the headers already name that
// algorithm. 400 InvalidRequest for a name that is none of S3's.
s3rdmafs::Result<void> AddTrailerChecksum(const Request& req,
                                          std::optional<WantedChecksum>* wanted);

// A multipart upload's checksum (CreateMultipartUpload's
// x-amz-checksum-algorithm and -type): the algorithm every part carries, and
// how the object's checksum is made from the parts' ones. COMPOSITE: the
// algorithm over the parts' raw digests, then "-<count>". FULL_OBJECT: the
// CRC of all the object's bytes, combined from the parts' CRCs and sizes
// (only CRCs combine).
struct UploadChecksum {
  std::string algorithm;  // lowercase, as Checksum::Named takes it: "crc32", ...
  bool full_object = false;
  std::string TypeName() const { return full_object ? "FULL_OBJECT" : "COMPOSITE"; }
};

// The request's x-amz-checksum-algorithm and x-amz-checksum-type; nullopt
// when it names neither. The type defaults as on S3 (CRC64NVME: FULL_OBJECT,
// others: COMPOSITE). InvalidRequest for an unknown algorithm or type, a type
// without an algorithm, or a pair S3 does not have (SHA-1 and SHA-256 are
// composite only, CRC64NVME full-object only).
s3rdmafs::Result<std::optional<UploadChecksum>> UploadChecksumOf(const Request& req);

// The object's checksum from its parts' (base64 value, size), in order.
// InvalidPart when a value is not the base64 of one of this algorithm's digests.
s3rdmafs::Result<std::string> CombinePartChecksums(
    const UploadChecksum& upload, const std::vector<std::pair<std::string, uint64_t>>& parts);

// The XML element S3 names an algorithm's value with: "crc32" -> "ChecksumCRC32".
std::string ChecksumElement(const std::string& algorithm);

// Base64 of `n` raw bytes, as S3 writes digests (Content-MD5, x-amz-checksum-*).
std::string Base64Of(const unsigned char* raw, int n);

// BadDigest unless the computed checksum is the expected one.
s3rdmafs::Result<void> CheckDigest(WantedChecksum& wanted);

}  // namespace s3rdma::server
