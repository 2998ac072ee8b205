#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <cstring>

#include "checksums.h"  // Base64Of
#include "s3rdmafs/s3/sigv4.h"
#include "xml_util.h"

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

// What the two forms of SigV4 carry, once pulled out of the header or query.
struct SignedParts {
  std::string credential, signed_headers, signature, amz_date;
  std::string raw_query;  // as signed: a presigned URL's without X-Amz-Signature
  std::string payload;
};

// The raw query without its X-Amz-Signature parameter (what was signed).
std::string WithoutSignature(const std::string& raw) {
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t amp = raw.find('&', pos);
    std::string part = raw.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (part.rfind("X-Amz-Signature=", 0) != 0 && !part.empty())
      out += (out.empty() ? "" : "&") + part;
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

AuthResult Verify(const Request& req, const SignedParts& in,
                  const std::map<std::string, std::string>& keys, const std::string& region) {
  // Credential = AKID/yyyymmdd/region/s3/aws4_request
  size_t slash = in.credential.find('/');
  if (slash == std::string::npos || in.signed_headers.empty() || in.signature.empty())
    return Deny("AuthorizationHeaderMalformed", "Malformed Authorization header");
  std::string access_key = in.credential.substr(0, slash);
  std::string scope = in.credential.substr(slash + 1);
  auto key = keys.find(access_key);
  if (key == keys.end())
    return Deny("InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.");
  // Scope date/region/service must match the signing inputs.
  std::string date = in.amz_date.substr(0, 8);
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
  if (in.signed_headers.find("host") == std::string::npos)
    return Deny("AccessDenied", "the host header must be signed");
  s3::HeaderList headers(req.headers.begin(), req.headers.end());
  s3::CanonicalInput ci{req.method, req.path,          in.raw_query,
                        &headers,   in.signed_headers, in.payload};
  std::string canonical = s3::CanonicalRequest(ci);
  std::string sts = s3::StringToSign(in.amz_date, scope, canonical);
  std::string expected = s3::SignatureHex(key->second, in.amz_date, region_in_scope, "s3", sts);
  if (expected.size() != in.signature.size() ||
      CRYPTO_memcmp(expected.data(), in.signature.data(), expected.size()) != 0)
    return Deny("SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.");
  AuthResult r;
  r.ok = true;
  r.access_key = access_key;
  r.payload_hash = in.payload;
  r.signed_headers = in.signed_headers;
  r.signature = in.signature;
  r.amz_date = in.amz_date;
  r.scope = scope;
  r.region = region_in_scope;
  r.secret_key = key->second;
  return r;
}

// A presigned URL: the signature and its inputs are query parameters; the
// URL is good from X-Amz-Date for X-Amz-Expires seconds (at most 7 days).
AuthResult AuthenticatePresigned(const Request& req, const std::map<std::string, std::string>& keys,
                                 const std::string& region, std::time_t now) {
  auto q = xml_util::ParseQuery(req.raw_query);
  if (q["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256")
    return Deny("AuthorizationQueryParametersError",
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  for (const char* p : {"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"})
    if (q[p].empty())
      return Deny("AuthorizationQueryParametersError", std::string("a presigned URL needs ") + p);
  const std::string& expires = q["X-Amz-Expires"];
  if (expires.size() > 7 || expires.find_first_not_of("0123456789") != std::string::npos ||
      std::stol(expires) < 1 || std::stol(expires) > 604800)
    return Deny("AccessDenied",  // 403, as radosgw and s3-tests have it
                "X-Amz-Expires must be between 1 and 604800 seconds, not '" + expires + "'");
  std::time_t t = ParseAmzDate(q["X-Amz-Date"]);
  if (t < 0) return Deny("AuthorizationQueryParametersError", "bad X-Amz-Date");
  if (t - now > std::time_t{15} * 60) return Deny("AccessDenied", "Request is not valid yet");
  if (now > t + std::stol(expires)) return Deny("AccessDenied", "Request has expired");
  SignedParts in{q["X-Amz-Credential"], q["X-Amz-SignedHeaders"],        q["X-Amz-Signature"],
                 q["X-Amz-Date"],       WithoutSignature(req.raw_query), "UNSIGNED-PAYLOAD"};
  return Verify(req, in, keys, region);
}

// A SigV2 presigned URL (AWSAccessKeyId, Expires, Signature): what boto3's
// generate_presigned_url makes unless told s3v4, so shared links work. The
// signature is HMAC-SHA1 over the method, Content-MD5, Content-Type, the
// expiry, the x-amz-* headers and the path-style resource with its
// subresources. SigV2 is accepted in this form only.
AuthResult AuthenticatePresignedV2(const Request& req,
                                   const std::map<std::string, std::string>& keys,
                                   std::time_t now) {
  auto q = xml_util::ParseQuery(req.raw_query);
  const std::string& expires = q["Expires"];
  if (expires.empty() || expires.size() > 12 ||
      expires.find_first_not_of("0123456789") != std::string::npos)
    return Deny("AccessDenied", "a SigV2 presigned URL needs Expires (seconds since 1970)");
  if (now > std::stoll(expires)) return Deny("AccessDenied", "Request has expired");
  auto key = keys.find(q["AWSAccessKeyId"]);
  if (key == keys.end())
    return Deny("InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.");
  std::map<std::string, std::string> amz;  // x-amz-* headers, lowercase, sorted
  for (const auto& [name, value] : req.headers) {
    std::string n = name;
    for (char& c : n) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    if (n.rfind("x-amz-", 0) == 0) amz[n] = value;
  }
  std::string sts = req.method + "\n" + req.Header("content-md5") + "\n" +
                    req.Header("content-type") + "\n" + expires + "\n";
  for (const auto& [n, v] : amz) sts += n + ":" + v + "\n";
  sts += req.path;
  static constexpr const char* kSubresources[] = {"acl",
                                                  "delete",
                                                  "location",
                                                  "partNumber",
                                                  "response-cache-control",
                                                  "response-content-disposition",
                                                  "response-content-encoding",
                                                  "response-content-language",
                                                  "response-content-type",
                                                  "response-expires",
                                                  "tagging",
                                                  "uploadId",
                                                  "uploads",
                                                  "versionId",
                                                  "versioning",
                                                  "versions"};
  char sep = '?';
  for (const char* sub : kSubresources) {  // already in sorted order
    if (!q.count(sub)) continue;
    sts += sep + std::string(sub) + (q[sub].empty() ? "" : "=" + q[sub]);
    sep = '&';
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), key->second.data(), static_cast<int>(key->second.size()),
       reinterpret_cast<const unsigned char*>(sts.data()), sts.size(), mac, &mac_len);
  const std::string expected = Base64Of(mac, static_cast<int>(mac_len));
  const std::string& given = q["Signature"];
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0)
    return Deny("SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.");
  AuthResult r;
  r.ok = true;
  r.access_key = key->first;
  r.payload_hash = "UNSIGNED-PAYLOAD";
  r.secret_key = key->second;
  return r;
}

}  // namespace

AuthResult Authenticate(const Request& req, const std::map<std::string, std::string>& keys,
                        const std::string& region, bool allow_anonymous, std::time_t now) {
  std::string auth = req.Header("authorization");
  if (auth.empty() && req.raw_query.find("X-Amz-Signature=") != std::string::npos)
    return AuthenticatePresigned(req, keys, region, now);
  if (auth.empty() && req.raw_query.find("AWSAccessKeyId=") != std::string::npos &&
      req.raw_query.find("Signature=") != std::string::npos)
    return AuthenticatePresignedV2(req, keys, now);
  if (auth.empty()) {
    AuthResult r;
    r.payload_hash = req.Header("x-amz-content-sha256");
    r.ok = allow_anonymous;
    r.anonymous = !allow_anonymous;
    if (!r.ok) {
      r.error_code = "AccessDenied";
      r.message = "Anonymous access is not allowed; sign requests with SigV4";
    }
    return r;
  }
  if (auth.rfind("AWS4-HMAC-SHA256 ", 0) != 0)
    return Deny("AccessDenied", "Only AWS4-HMAC-SHA256 (SigV4) header authentication is supported");
  SignedParts in{Field(auth, "Credential"),
                 Field(auth, "SignedHeaders"),
                 Field(auth, "Signature"),
                 req.Header("x-amz-date"),
                 req.raw_query,
                 req.Header("x-amz-content-sha256")};
  if (in.amz_date.empty()) return Deny("AccessDenied", "x-amz-date header is required");
  std::time_t t = ParseAmzDate(in.amz_date);
  if (t < 0) return Deny("AccessDenied", "bad x-amz-date");
  if (std::llabs(static_cast<long long>(now - t)) > 15LL * 60)
    return Deny("RequestTimeTooSkewed",
                "The difference between the request time and the server's time is too large.");
  // S3 clients send x-amz-content-sha256; generic SigV4 signers (curl
  // --aws-sigv4) sign the payload's hash without the header, which for a
  // bodiless request is the hash of "".
  if (in.payload.empty()) {
    std::string length = req.Header("content-length");
    if (!length.empty() && length != "0")
      return Deny("InvalidRequest",
                  "x-amz-content-sha256 header is required for requests with a body");
    in.payload = std::string(s3::kEmptySha256);
  }
  return Verify(req, in, keys, region);
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
