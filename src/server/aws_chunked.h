// aws-chunked request bodies (Content-Encoding: aws-chunked), what current
// SDKs send for PutObject and UploadPart: the payload in chunks of
// "<hex size>[;chunk-signature=<sig>]\r\n<bytes>\r\n", a zero-size chunk, then
// trailer headers (x-amz-checksum-*) and an empty line. The forms are named by
// x-amz-content-sha256:
//   STREAMING-UNSIGNED-PAYLOAD-TRAILER          no signatures, trailers
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          every chunk signed, chained
//                                               from the request's signature
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  both, and a signed trailer
// The decoder is fed the raw body as it arrives and hands the payload on; it
// never holds more than one line.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "s3rdmafs/common/result.h"

struct evp_md_ctx_st;

namespace s3rdma::server {

struct AuthResult;

class AwsChunkedDecoder {
 public:
  // Signs one chunk's string-to-sign (hex HMAC with the request's key), for
  // the signed forms; the seed is the request's own signature.
  using Signer = std::function<std::string(const std::string& string_to_sign)>;
  struct Signing {
    Signer sign;
    std::string seed_signature, amz_date, scope;
  };

  // `signing` empty for the unsigned form.
  explicit AwsChunkedDecoder(std::optional<Signing> signing = std::nullopt);
  ~AwsChunkedDecoder();
  AwsChunkedDecoder(const AwsChunkedDecoder&) = delete;
  AwsChunkedDecoder& operator=(const AwsChunkedDecoder&) = delete;

  // Decodes `n` raw bytes; payload bytes go to `sink` (false: stop).
  s3rdmafs::Result<void> Feed(const char* data, size_t n,
                              const std::function<bool(const char*, size_t)>& sink);
  // After the last raw byte: the body must have ended where its grammar ends.
  s3rdmafs::Result<void> Finish() const;

  uint64_t decoded_bytes() const { return decoded_; }
  // Trailer headers, names lowercased ("x-amz-checksum-crc32" -> value).
  const std::map<std::string, std::string>& trailers() const { return trailers_; }

  // Which form an x-amz-content-sha256 value names; false for none of them.
  static bool Names(const std::string& payload_hash, bool* signed_chunks, bool* trailer);

  // What the body of an authenticated request needs: for an aws-chunked
  // form, a decoder in *decoder (chunk signatures checked with the request's
  // key, which must outlive it); nothing for a plain body. The S3 error to
  // answer otherwise: 403 for signed chunks on an unsigned request, 501 for
  // another STREAMING- form.
  static s3rdmafs::Result<void> ForBody(const AuthResult& auth,
                                        std::optional<AwsChunkedDecoder>* decoder);

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  s3rdmafs::Result<void> Line(const std::string& line);
  s3rdmafs::Result<void> ChunkEnded();

  std::optional<Signing> signing_;
  State state_ = State::kSize;
  std::string line_;
  uint64_t remaining_ = 0, decoded_ = 0;
  std::string chunk_signature_, previous_signature_;
  evp_md_ctx_st* chunk_hash_ = nullptr;  // SHA-256 of the chunk being read (signed forms)
  std::map<std::string, std::string> trailers_;
  std::string trailer_text_;  // canonical "name:value\n" lines, for the trailer signature
};

// A Content-Encoding value without "aws-chunked", which says how one
// request's body was framed, not what the object is: S3 keeps the other
// codings (gzip) and drops it. "" when none is left.
std::string WithoutAwsChunked(std::string_view content_encoding);

}  // namespace s3rdma::server
