#include "aws_chunked.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "auth.h"
#include "s3rdmafs/s3/sigv4.h"

namespace s3rdma::server {

using s3rdmafs::MakeS3Error;
using s3rdmafs::Result;

namespace {

constexpr size_t kMaxLine = 4096;

Result<void> Malformed(const std::string& why) {
  return MakeS3Error(400, "IncompleteBody", "the aws-chunked body is malformed: " + why);
}

bool SameSignature(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

AwsChunkedDecoder::AwsChunkedDecoder(std::optional<Signing> signing)
    : signing_(std::move(signing)) {
  if (signing_) {
    previous_signature_ = signing_->seed_signature;
    chunk_hash_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(chunk_hash_, EVP_sha256(), nullptr);
  }
}

AwsChunkedDecoder::~AwsChunkedDecoder() {
  if (chunk_hash_) EVP_MD_CTX_free(chunk_hash_);
}

bool AwsChunkedDecoder::Names(const std::string& h, bool* signed_chunks, bool* trailer) {
  if (h == "STREAMING-UNSIGNED-PAYLOAD-TRAILER") return *signed_chunks = false, *trailer = true;
  if (h == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    return *signed_chunks = true, *trailer = false, true;
  if (h == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") return *signed_chunks = *trailer = true;
  return false;
}

Result<void> AwsChunkedDecoder::Feed(const char* d, size_t n,
                                     const std::function<bool(const char*, size_t)>& sink) {
  while (n > 0) {
    if (state_ == State::kDone) return Malformed("bytes after the final empty line");
    if (state_ == State::kData) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n));
      if (chunk_hash_) EVP_DigestUpdate(chunk_hash_, d, take);
      if (!sink(d, take)) return MakeS3Error(500, "InternalError", "the body could not be stored");
      decoded_ += take;
      remaining_ -= take;
      d += take, n -= take;
      if (remaining_ == 0) state_ = State::kDataEnd;
      continue;
    }
    // Line states: collect up to CRLF.
    const char* nl = static_cast<const char*>(memchr(d, '\n', n));
    size_t take = nl ? static_cast<size_t>(nl - d) + 1 : n;
    if (line_.size() + take > kMaxLine) return Malformed("a chunk header line is too long");
    line_.append(d, take);
    d += take, n -= take;
    if (!nl) continue;
    if (line_.size() < 2 || line_[line_.size() - 2] != '\r')
      return Malformed("a line without CRLF");
    std::string line = line_.substr(0, line_.size() - 2);
    line_.clear();
    if (auto r = Line(line); !r) return r;
  }
  return {};
}

Result<void> AwsChunkedDecoder::Line(const std::string& line) {
  switch (state_) {
    case State::kDataEnd:
      if (!line.empty()) return Malformed("chunk data longer than its size");
      if (auto r = ChunkEnded(); !r) return r;
      state_ = State::kSize;
      return {};
    case State::kSize: {
      std::string size = line.substr(0, line.find(';'));
      if (size.empty() || size.size() > 15 ||
          size.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        return Malformed("bad chunk size '" + size.substr(0, 20) + "'");
      remaining_ = std::stoull(size, nullptr, 16);
      chunk_signature_.clear();
      if (size_t at = line.find(";chunk-signature="); at != std::string::npos)
        chunk_signature_ = line.substr(at + 17);
      if (signing_ && chunk_signature_.empty()) return Malformed("a chunk without its signature");
      if (remaining_ > 0) {
        state_ = State::kData;
        return {};
      }
      // The final, empty chunk: signed like the others, then trailers.
      if (auto r = ChunkEnded(); !r) return r;
      state_ = State::kTrailer;
      return {};
    }
    case State::kTrailer: {
      if (line.empty()) {
        state_ = State::kDone;
        return {};
      }
      size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0) return Malformed("a bad trailer line");
      std::string name = line.substr(0, colon), value = line.substr(colon + 1);
      for (char& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
      value.erase(0, value.find_first_not_of(" \t"));
      if (name == "x-amz-trailer-signature") {
        if (!signing_) return {};
        std::string sts = "AWS4-HMAC-SHA256-TRAILER\n" + signing_->amz_date + "\n" +
                          signing_->scope + "\n" + previous_signature_ + "\n" +
                          s3rdmafs::s3::Sha256Hex(trailer_text_);
        if (!SameSignature(signing_->sign(sts), value))
          return MakeS3Error(403, "SignatureDoesNotMatch",
                             "The trailer signature we calculated does not match the one sent.");
        return {};
      }
      trailers_[name] = value;
      trailer_text_ += name + ":" + value + "\n";
      return {};
    }
    default:
      return Malformed("unexpected line");
  }
}

// Checks a chunk's signature, chained from the one before (signed forms).
Result<void> AwsChunkedDecoder::ChunkEnded() {
  if (!signing_) return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(chunk_hash_, md, &len);
  EVP_DigestInit_ex(chunk_hash_, EVP_sha256(), nullptr);
  std::string sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + signing_->amz_date + "\n" + signing_->scope +
                    "\n" + previous_signature_ + "\n" + std::string(s3rdmafs::s3::kEmptySha256) +
                    "\n" +
                    s3rdmafs::s3::HexEncode(std::string_view(reinterpret_cast<char*>(md), len));
  std::string want = signing_->sign(sts);
  if (!SameSignature(want, chunk_signature_))
    return MakeS3Error(403, "SignatureDoesNotMatch",
                       "The chunk signature we calculated does not match the one sent.");
  previous_signature_ = want;
  return {};
}

Result<void> AwsChunkedDecoder::Finish() const {
  if (state_ != State::kDone)
    return MakeS3Error(400, "IncompleteBody", "the aws-chunked body ended before its last chunk");
  return {};
}

s3rdmafs::Result<void> AwsChunkedDecoder::ForBody(const AuthResult& auth,
                                                  std::optional<AwsChunkedDecoder>* decoder) {
  bool signed_chunks = false, trailer = false;
  if (!Names(auth.payload_hash, &signed_chunks, &trailer)) {
    if (auth.payload_hash.rfind("STREAMING-", 0) == 0)
      return s3rdmafs::MakeS3Error(
          501, "NotImplemented",
          "the body form " + auth.payload_hash +
              " is not supported (aws-chunked: STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
              "STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])");
    return {};
  }
  std::optional<Signing> signing;
  if (signed_chunks) {
    if (auth.secret_key.empty())
      return s3rdmafs::MakeS3Error(403, "AccessDenied",
                                   "a signed aws-chunked body needs a signed request");
    signing = Signing{[&auth](const std::string& sts) {
                        return s3rdmafs::s3::SignatureHex(auth.secret_key, auth.amz_date,
                                                          auth.region, "s3", sts);
                      },
                      auth.signature, auth.amz_date, auth.scope};
  }
  decoder->emplace(std::move(signing));
  return {};
}

std::string WithoutAwsChunked(std::string_view content_encoding) {
  std::string kept;
  for (size_t pos = 0; pos <= content_encoding.size();) {
    size_t comma = content_encoding.find(',', pos);
    std::string coding(
        content_encoding.substr(pos, comma == std::string_view::npos ? comma : comma - pos));
    coding.erase(0, coding.find_first_not_of(' '));
    coding.erase(coding.find_last_not_of(' ') + 1);
    if (!coding.empty() && strcasecmp(coding.c_str(), "aws-chunked") != 0)
      kept += (kept.empty() ? "" : ", ") + coding;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return kept;
}

}  // namespace s3rdma::server
