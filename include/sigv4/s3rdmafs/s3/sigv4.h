// AWS Signature Version 4 (and the credentials chain, credentials.h), shared by the client
// (signing) and the reference server (verification), so both sides canonicalise in exactly one
// place. Pure functions; thread-safe.
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace s3rdmafs::s3 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  bool anonymous() const { return access_key.empty(); }
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string Sha256Hex(std::string_view data);
std::string Md5Hex(std::string_view data);                            // S3's ETag of a single PUT
std::string HmacSha256(std::string_view key, std::string_view data);  // raw bytes
std::string HexEncode(std::string_view bytes);

// RFC 3986 unreserved characters stay; everything else is %XX (uppercase).
std::string UriEncode(std::string_view text, bool encode_slash);
// Decodes %XX (and, when `plus_is_space`, '+'); returns false on bad escapes.
bool UriDecode(std::string_view text, std::string* out, bool plus_is_space = false);

// "20130524T000000Z"
std::string AmzDate(std::time_t t);

// Query string -> sorted "k=v&k2=v2" with every name and value re-encoded.
std::string CanonicalQueryString(std::string_view raw_query);

struct CanonicalInput {
  std::string_view method;
  std::string_view canonical_uri;   // the path exactly as sent (already encoded)
  std::string_view raw_query;       // without '?'
  const HeaderList* headers;        // all request headers
  std::string_view signed_headers;  // "host;range;x-amz-date" (lowercase, sorted)
  std::string_view payload_hash;
};

std::string CanonicalRequest(const CanonicalInput& in);
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);
// scope = "20130524/us-east-1/s3/aws4_request"
std::string Scope(std::string_view amz_date, std::string_view region, std::string_view service);
std::string SignatureHex(std::string_view secret_key, std::string_view amz_date,
                         std::string_view region, std::string_view service,
                         std::string_view string_to_sign);

// Client side: adds x-amz-date, x-amz-content-sha256, x-amz-security-token
// (when set) and Authorization to `headers`, signing every header present
// (the Host header must already be in the list).
void SignRequest(const Credentials& creds, std::string_view region, std::string_view method,
                 std::string_view canonical_uri, std::string_view raw_query,
                 std::string_view payload_hash, std::time_t now, HeaderList* headers);

}  // namespace s3rdmafs::s3
