// SigV4 verification of incoming requests, in both of its forms: the
// Authorization header, and the query string of a presigned URL
// (X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders,
// -Signature). Uses the same canonicalisation code the client signs with.
#pragma once

#include <ctime>
#include <map>
#include <string>

#include "exchange.h"

namespace s3rdma::server {

struct AuthResult {
  bool ok = false;
  // Unsigned (no Authorization, no X-Amz-Signature) and this server does not
  // take anonymous requests: what an ACL may still admit (acl.h).
  bool anonymous = false;
  std::string access_key;  // who signed it ("" when anonymous)
  std::string error_code;  // S3 code when !ok: AccessDenied, SignatureDoesNotMatch, ...
  std::string message;
  std::string payload_hash;    // the x-amz-content-sha256 the signature covers
  std::string signed_headers;  // "host;range;..." ("" when anonymous)
  // What signed aws-chunked bodies chain their chunk signatures from.
  std::string signature, amz_date, scope, region, secret_key;
  bool Signed(std::string_view lowercase_header) const;
};

AuthResult Authenticate(const Request& request, const std::map<std::string, std::string>& keys,
                        const std::string& region, bool allow_anonymous, std::time_t now);

}  // namespace s3rdma::server
