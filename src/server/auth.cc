#include "auth.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>

#include "s3rdmafs/s3/sigv4.h"

namespace s3rdma::server {

namespace s3 = s3rdmafs::s3;

namespace {

// Pulls "Name=value" out of "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
std::string Field(const std::string& auth, const char* name) {
  std::string needle = std::string(name) + "=";
  size_t pos = auth.find(needle);
  if (pos == std::string::npos) return "";
  pos += needle.size();
  size_t end = auth.find(',', pos);
  std::string v = auth.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

std::time_t ParseAmzDate(const std::string& s) {
  std::tm tmv{};
  if (s.size() != 16 || !strptime(s.c_str(), "%Y%m%dT%H%M%SZ", &tmv)) return -1;
  return timegm(&tmv);
}

AuthResult Deny(const char* code, std::string message) {
  AuthResult r;
  r.error_code = code;
  r.message = std::move(message);
  return r;
}

}  // namespace

AuthResult Authenticate(const Request& req, const std::map<std::string, std::string>& keys,
                        const std::string& region, bool allow_anonymous, std::time_t now) {
  std::string auth = req.Header("authorization");
  if (auth.empty()) {
    if (allow_anonymous) {
      AuthResult r;
      r.ok = true;
      r.payload_hash = req.Header("x-amz-content-sha256");
      return r;
    }
    return Deny("AccessDenied", "Anonymous access is not allowed; sign requests with SigV4");
  }
  if (auth.rfind("AWS4-HMAC-SHA256 ", 0) != 0)
    return Deny("AccessDenied", "Only AWS4-HMAC-SHA256 (SigV4) header authentication is supported");
  std::string credential = Field(auth, "Credential");
  std::string signed_headers = Field(auth, "SignedHeaders");
  std::string signature = Field(auth, "Signature");
  // Credential = AKID/yyyymmdd/region/s3/aws4_request
  size_t slash = credential.find('/');
  if (slash == std::string::npos || signed_headers.empty() || signature.empty())
    return Deny("AuthorizationHeaderMalformed", "Malformed Authorization header");
  std::string access_key = credential.substr(0, slash);
  std::string scope = credential.substr(slash + 1);
  auto key = keys.find(access_key);
  if (key == keys.end())
    return Deny("InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.");

  std::string amz_date = req.Header("x-amz-date");
  if (amz_date.empty()) return Deny("AccessDenied", "x-amz-date header is required");
  std::time_t t = ParseAmzDate(amz_date);
  if (t < 0) return Deny("AccessDenied", "bad x-amz-date");
  if (std::llabs(static_cast<long long>(now - t)) > 15LL * 60)
    return Deny("RequestTimeTooSkewed",
                "The difference between the request time and the server's time is too large.");
  // Scope date/region/service must match the signing inputs.
  std::string date = amz_date.substr(0, 8);
  std::string region_in_scope;
  {
    size_t a = scope.find('/'), b = scope.find('/', a + 1);
    if (a == std::string::npos || b == std::string::npos || scope.substr(0, a) != date)
      return Deny("AuthorizationHeaderMalformed", "credential scope does not match x-amz-date");
    region_in_scope = scope.substr(a + 1, b - a - 1);
    if (scope.substr(b + 1) != "s3/aws4_request")
      return Deny("AuthorizationHeaderMalformed", "credential scope must be for service s3");
  }
  if (region_in_scope != region)
    return Deny("AuthorizationHeaderMalformed",
                "the region '" + region_in_scope + "' is wrong; expecting '" + region + "'");
  if (signed_headers.find("host") == std::string::npos)
    return Deny("AccessDenied", "the host header must be signed");

  // S3 clients send x-amz-content-sha256; generic SigV4 signers (curl
  // --aws-sigv4) sign the payload's hash without the header, which for a
  // bodiless request is the hash of "".
  std::string payload = req.Header("x-amz-content-sha256");
  if (payload.empty()) {
    std::string length = req.Header("content-length");
    if (!length.empty() && length != "0")
      return Deny("InvalidRequest",
                  "x-amz-content-sha256 header is required for requests with a body");
    payload = std::string(s3::kEmptySha256);
  }
  s3::HeaderList headers(req.headers.begin(), req.headers.end());
  s3::CanonicalInput in{req.method, req.path, req.raw_query, &headers, signed_headers, payload};
  std::string canonical = s3::CanonicalRequest(in);
  std::string sts = s3::StringToSign(amz_date, scope, canonical);
  std::string expected = s3::SignatureHex(key->second, amz_date, region_in_scope, "s3", sts);
  if (expected.size() != signature.size() ||
      CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) != 0)
    return Deny("SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.");
  AuthResult r;
  r.ok = true;
  r.access_key = access_key;
  r.payload_hash = payload;
  r.signed_headers = signed_headers;
  r.signature = signature;
  r.amz_date = amz_date;
  r.scope = scope;
  r.region = region_in_scope;
  r.secret_key = key->second;
  return r;
}

bool AuthResult::Signed(std::string_view name) const {
  size_t pos = 0;
  while (pos <= signed_headers.size()) {
    size_t semi = signed_headers.find(';', pos);
    if (std::string_view(signed_headers)
            .substr(pos, semi == std::string::npos ? std::string::npos : semi - pos) == name)
      return true;
    if (semi == std::string::npos) break;
    pos = semi + 1;
  }
  return false;
}

}  // namespace s3rdma::server
