// Access: GET and PUT ?acl, what an unsigned request may do (acl.h), and
// CORS preflights.
#include <initializer_list>
#include <pugixml.hpp>

#include "acl.h"
#include "s3_handler.h"
#include "xml_util.h"

namespace s3rdma::server {

using s3rdmafs::Errc;
using s3rdmafs::MakeS3Error;
using namespace xml_util;  // NOLINT

namespace {

CannedAcl ObjectAcl(const ObjectMeta& meta) {
  for (const auto& [name, value] : meta.user)
    if (name == "x-amz-acl") return StoredAcl(value);
  return CannedAcl::kPrivate;
}

// Whether every query parameter is one of `allowed` (or a response-* override).
bool OnlyParams(const std::map<std::string, std::string>& query,
                std::initializer_list<const char*> allowed) {
  for (const auto& [name, value] : query) {
    bool ok = name.rfind("response-", 0) == 0;
    for (const char* a : allowed) ok |= name == a;
    if (!ok) return false;
  }
  return true;
}

}  // namespace

s3rdmafs::Result<void> S3Handler::AdmitAnonymous(const Request& req, const std::string& bucket,
                                                 const std::string& key,
                                                 const std::map<std::string, std::string>& query) {
  auto denied = [] {
    return MakeS3Error(403, "AccessDenied",
                       "Anonymous access is not allowed here (the ACL is not public); sign "
                       "requests with SigV4");
  };
  if (bucket.empty()) return denied();
  auto b = backend_->GetBucket(bucket);
  if (!b) return tl::unexpected(b.error());  // NoSuchBucket: S3 tells anyone that
  const CannedAcl bucket_acl = StoredAcl(b->acl);
  const std::string& m = req.method;
  if (key.empty()) {
    if (m == "GET" && AnonymousMayRead(bucket_acl) &&
        OnlyParams(query, {"prefix", "delimiter", "marker", "max-keys", "list-type",
                           "continuation-token", "start-after", "encoding-type", "fetch-owner"}))
      return {};
    return denied();
  }
  if ((m == "GET" || m == "HEAD") && OnlyParams(query, {"partNumber"})) {
    auto meta = backend_->Stat(bucket, key);
    if (meta) return AnonymousMayRead(ObjectAcl(*meta)) ? s3rdmafs::Result<void>{} : denied();
    // Who may list the bucket may learn that a key is not there.
    if (meta.error().code == Errc::kNoSuchKey && AnonymousMayRead(bucket_acl))
      return tl::unexpected(meta.error());
    return denied();
  }
  const bool write = (m == "PUT" && !req.HasHeader("x-amz-copy-source") &&
                      OnlyParams(query, {"partNumber", "uploadId"})) ||
                     (m == "DELETE" && OnlyParams(query, {"uploadId"})) ||
                     (m == "POST" && OnlyParams(query, {"uploads", "uploadId"}));
  if (write && AnonymousMayWrite(bucket_acl)) return {};
  return denied();
}

void S3Handler::SendAcl(Exchange& ex, const std::string& bucket, const std::string& key) {
  std::string resource = "/" + bucket + (key.empty() ? "" : "/" + key);
  CannedAcl acl = CannedAcl::kPrivate;
  if (key.empty()) {
    auto b = backend_->GetBucket(bucket);
    if (!b) return SendBackendError(ex, b.error(), resource);
    acl = StoredAcl(b->acl);
  } else {
    auto meta = backend_->Stat(bucket, key);
    if (!meta) return SendBackendError(ex, meta.error(), resource);
    acl = ObjectAcl(*meta);
  }
  pugi::xml_document doc;
  AppendGrants(Root(doc, "AccessControlPolicy"), acl);
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(200, h, ToXml(doc));
}

// PUT ?acl: a canned name in x-amz-acl, or an AccessControlPolicy body
// whose grants are a canned ACL's.
void S3Handler::PutAcl(Exchange& ex, const std::string& bucket, const std::string& key) {
  std::string resource = "/" + bucket + (key.empty() ? "" : "/" + key);
  const Request& req = ex.request();
  s3rdmafs::Result<CannedAcl> acl = CannedAcl::kPrivate;
  if (NamesAcl(req)) {
    acl = RequestedAcl(req);
  } else {
    pugi::xml_document body;
    if (!ReadXmlBody(ex, resource, &body)) return;
    acl = AclFromPolicy(body.child("AccessControlPolicy"));
  }
  if (!acl) return SendBackendError(ex, acl.error(), resource);
  auto set = key.empty() ? backend_->SetBucketAcl(bucket, NameOf(*acl))
                         : backend_->SetObjectAcl(bucket, key, NameOf(*acl));
  if (!set) return SendBackendError(ex, set.error(), resource);
  ex.Send(200, CommonHeaders(), "");
}

// No bucket has a CORS configuration here, so no preflight is allowed; an
// OPTIONS without Origin is no preflight at all (S3 answers 400 to both
// the same way). Preflights are never signed.
void S3Handler::Preflight(Exchange& ex) {
  const Request& req = ex.request();
  if (!req.HasHeader("origin"))
    return SendError(ex, 400, "BadRequest",
                     "Insufficient information. Origin request header needed.", req.path);
  SendError(ex, 403, "AccessForbidden",
            "CORSResponse: This CORS request is not allowed: no bucket here has a CORS "
            "configuration.",
            req.path);
}

}  // namespace s3rdma::server
