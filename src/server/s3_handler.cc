#include "s3_handler.h"

#include <openssl/evp.h>
#include <strings.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <pugixml.hpp>
#include <sstream>
#include <variant>

#include "acl.h"
#include "auth.h"
#include "conditions.h"
#include "rdma_endpoint.h"
#include "s3rdmafs/common/log.h"
#include "s3rdmafs/protocol/token.h"
#include "s3rdmafs/s3/sigv4.h"
#include "xml_util.h"

namespace s3rdma::server {

namespace s3 = s3rdmafs::s3;
using s3rdmafs::Errc;

using namespace xml_util;  // NOLINT: the handler speaks in these helpers throughout

Headers S3Handler::CommonHeaders() {
  char id[32];
  snprintf(id, sizeof id, "%016llX", static_cast<unsigned long long>(++request_seq_));
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return {{"x-amz-request-id", id},
          {"Server", "s3rdma-server"},
          {"Date", HttpDate(static_cast<int64_t>(ts.tv_sec) * 1000000000)}};
}

void S3Handler::SendError(Exchange& ex, int status, const std::string& code,
                          const std::string& message, const std::string& resource) {
  pugi::xml_document doc;
  auto decl = doc.prepend_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  auto e = doc.append_child("Error");
  Text(e, "Code", code);
  Text(e, "Message", message);
  Text(e, "Resource", resource);
  Headers h = CommonHeaders();
  Text(e, "RequestId", h[0].second);
  h.emplace_back("Content-Type", "application/xml");
  if (ex.request().method == "HEAD")
    ex.SendHeadersOnly(status, h, 0);
  else
    ex.Send(status, h, ToXml(doc));
}

void S3Handler::SendBackendError(Exchange& ex, const s3rdmafs::Error& e,
                                 const std::string& resource) {
  if (!e.s3_code.empty())
    return SendError(ex, e.http_status ? e.http_status : 400, e.s3_code, e.message, resource);
  switch (e.code) {
    case Errc::kNoSuchBucket:
      return SendError(ex, 404, "NoSuchBucket", e.message, resource);
    case Errc::kNoSuchKey:
      return SendError(ex, 404, "NoSuchKey", "The specified key does not exist.", resource);
    case Errc::kAccessDenied:
      return SendError(ex, 403, "AccessDenied", e.message, resource);
    case Errc::kInvalidArgument:
      return SendError(ex, 400, "InvalidArgument", e.message, resource);
    case Errc::kNoSpace:
      return SendError(ex, 507, "InsufficientStorage", e.message, resource);
    case Errc::kNoSuchUpload:
      return SendError(ex, 404, "NoSuchUpload",
                       "The specified upload does not exist. The upload ID may be invalid, or "
                       "the upload may have been aborted or completed.",
                       resource);
    case Errc::kNotFound:
      return SendError(ex, 404, "NotFound", e.message, resource);
    case Errc::kNotSupported:
      return SendError(ex, 501, "NotImplemented", e.message, resource);
    case Errc::kBadRequest:
      return SendError(ex, 400, "InvalidRequest", e.message, resource);
    case Errc::kPreconditionFailed:
      return SendError(ex, 412, "PreconditionFailed", e.message, resource);
    default:
      return SendError(ex, 500, "InternalError", e.message, resource);
  }
}

void S3Handler::Handle(Exchange& ex) {
  const Request& req = ex.request();
  LOG_DEBUG("%s %s%s%s", req.method.c_str(), req.target.c_str(),
            req.HasHeader("range") ? " range=" : "", req.Header("range").c_str());
  stats_->CountRequest(req.method);
  std::string path;
  if (!s3::UriDecode(req.path, &path))
    return SendError(ex, 400, "InvalidURI", "bad %-escape in path", req.path);
  if (req.method == "OPTIONS") return Preflight(ex);
  AuthResult auth =
      Authenticate(req, config_.keys, config_.region, config_.anonymous, std::time(nullptr));
  if (!auth.ok && !auth.anonymous) {  // an unsigned request waits for the ACLs, below
    int status = auth.error_code == "AuthorizationHeaderMalformed" ||
                         auth.error_code == "AuthorizationQueryParametersError"
                     ? 400
                     : 403;
    LOG_INFO("%s %s: denied: %s", req.method.c_str(), req.target.c_str(), auth.error_code.c_str());
    return SendError(ex, status, auth.error_code, auth.message, path);
  }
  std::string_view p = path;
  if (!p.empty() && p.front() == '/') p.remove_prefix(1);
  std::string bucket, key;
  std::string host = req.Header("host");
  host =
      host.substr(0, host.rfind(':') == std::string::npos || host.back() == ']' ? host.size()
                                                                                : host.rfind(':'));
  if (!config_.domain.empty() && host.size() > config_.domain.size() + 1 &&
      host.compare(host.size() - config_.domain.size() - 1, std::string::npos,
                   "." + config_.domain) == 0) {
    bucket = host.substr(0, host.size() - config_.domain.size() - 1);  // virtual-hosted style
    key = std::string(p);
  } else {
    size_t slash = p.find('/');
    bucket = std::string(p.substr(0, slash));
    key = slash == std::string_view::npos ? "" : std::string(p.substr(slash + 1));
  }
  if (upstream_) return Gateway(ex, auth, bucket, key);
  auto query = ParseQuery(req.raw_query);
  const std::string& m = req.method;
  if (auth.anonymous) {
    if (auto admitted = AdmitAnonymous(req, bucket, key, query); !admitted)
      return SendBackendError(ex, admitted.error(), path);
    auth.ok = true;
  }
  if (auto acl = RequestedAcl(req); !acl) return SendBackendError(ex, acl.error(), path);
  // x-amz-expected-bucket-owner guards against writing into a bucket that
  // changed hands; every bucket here is kOwnerId's.
  for (const char* guard : {"x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner"})
    if (req.HasHeader(guard) && req.Header(guard) != kOwnerId)
      return SendError(
          ex, 403, "AccessDenied",
          std::string(guard) + " '" + req.Header(guard) + "' is not the owner '" + kOwnerId + "'",
          path);

  if (bucket.empty()) {
    if (m == "GET") return ListBuckets(ex);
    return SendError(ex, 405, "MethodNotAllowed",
                     "The specified method is not allowed against this resource.", "/");
  }
  if (m == "GET" && query.count("acl")) return SendAcl(ex, bucket, key);
  if (m == "PUT" && query.count("acl")) return PutAcl(ex, bucket, key);
  for (const char* sub :
       {"tagging", "retention", "legal-hold", "torrent", "attributes", "versionId"})
    if (!key.empty() && query.count(sub))
      return SendError(ex, 501, "NotImplemented", std::string("?") + sub + " is not implemented",
                       path);
  if (key.empty()) {
    if (m == "GET" && query.count("location")) {
      auto b = backend_->GetBucket(bucket);
      if (!b) return SendBackendError(ex, b.error(), path);
      pugi::xml_document doc;
      auto root = Root(doc, "LocationConstraint");
      // What the bucket was created with; else this server's region (none
      // for us-east-1, as S3 answers).
      std::string location = !b->location.empty()            ? b->location
                             : config_.region != "us-east-1" ? config_.region
                                                             : "";
      if (!location.empty()) root.text().set(location.c_str());
      Headers h = CommonHeaders();
      h.emplace_back("Content-Type", "application/xml");
      return ex.Send(200, h, ToXml(doc));
    }
    if (m == "GET" && query.count("uploads")) return ListUploads(ex, bucket);
    if (m == "GET" && query.count("versioning")) {
      if (auto r = backend_->BucketExists(bucket); !r) return SendBackendError(ex, r.error(), path);
      pugi::xml_document doc;
      Root(doc, "VersioningConfiguration");  // never enabled: no Status, as S3 answers
      Headers h = CommonHeaders();
      h.emplace_back("Content-Type", "application/xml");
      return ex.Send(200, h, ToXml(doc));
    }
    if (m == "GET" && query.count("versions")) return ListObjects(ex, bucket, Listing::kVersions);
    if (m == "GET" && (query.count("acl") || query.count("policy") || query.count("lifecycle") ||
                       query.count("cors") || query.count("tagging")))
      return SendError(ex, 501, "NotImplemented", "This bucket subresource is not implemented",
                       path);
    if (m == "GET")
      return ListObjects(
          ex, bucket,
          query.count("list-type") && query["list-type"] == "2" ? Listing::kV2 : Listing::kV1);
    if (m == "HEAD") {
      if (auto r = backend_->BucketExists(bucket); !r) return SendBackendError(ex, r.error(), path);
      Headers h = CommonHeaders();
      h.emplace_back("x-amz-bucket-region", config_.region);
      return ex.SendHeadersOnly(200, h, 0);
    }
    // Any other bucket subresource (versioning, policy, cors, lifecycle,
    // ...) is not kept here: saying so beats taking it for CreateBucket.
    if ((m == "PUT" || m == "DELETE") && !query.empty())
      return SendError(ex, 501, "NotImplemented",
                       "?" + query.begin()->first + " is not implemented on buckets", path);
    if (m == "PUT") {
      std::string location;
      if (req.HasHeader("content-length") && req.Header("content-length") != "0") {
        pugi::xml_document config;
        if (!ReadXmlBody(ex, path, &config)) return;
        location = config.child("CreateBucketConfiguration").child_value("LocationConstraint");
      }
      auto acl = RequestedAcl(req);
      auto r = backend_->CreateBucket(bucket, location, NameOf(*acl));
      // us-east-1 answers a re-create by the owner with 200 and keeps the
      // bucket as it is (S3's legacy rule; every other region answers 409).
      if (!r && !(r.error().s3_code == "BucketAlreadyOwnedByYou" && config_.region == "us-east-1"))
        return SendBackendError(ex, r.error(), path);
      Headers h = CommonHeaders();
      h.emplace_back("Location", "/" + bucket);
      return ex.Send(200, h, "");
    }
    if (m == "DELETE") {
      if (auto r = backend_->DeleteBucket(bucket); !r) return SendBackendError(ex, r.error(), path);
      return ex.Send(204, CommonHeaders(), "");
    }
    if (m == "POST" && query.count("delete")) return DeleteObjects(ex, bucket);
    if (m == "POST" && query.count("rdma-connect")) return RdmaConnect(ex, auth, bucket);
    return SendError(ex, 405, "MethodNotAllowed",
                     "The specified method is not allowed against this resource.", path);
  }
  if (m == "POST" && query.count("uploads")) return CreateUpload(ex, bucket, key);
  if (query.count("uploadId")) {
    if (m == "POST") return CompleteUpload(ex, bucket, key);
    if (m == "GET") return ListUploadParts(ex, bucket, key);
    if (m == "DELETE") {
      if (auto r = uploads_.Abort(bucket, key, query["uploadId"]); !r)
        return SendBackendError(ex, r.error(), path);
      return ex.Send(204, CommonHeaders(), "");
    }
  }
  if (m == "PUT" && req.HasHeader("x-amz-copy-source")) return CopyObject(ex, bucket, key);
  if ((m == "GET" || m == "PUT") && req.HasHeader("x-amz-rdma-token")) {
    if (config_.rdma_decline.empty()) return RdmaRequest(ex, auth, bucket, key);
    if (config_.rdma_decline == "aistor")
      return RdmaDecline(ex, "RDMA is off for this request", path);
    if (config_.rdma_decline == "rustfs")
      return SendError(ex, 400, "InvalidRequest", "x-amz-rdma-token is not supported", path);
    // "ceph": the token is ignored; a GET answers with its body, a PUT
    // stores its (empty) body, unless its x-amz-checksum-* refuses that.
  }
  if (m == "GET" || m == "HEAD") return GetObject(ex, bucket, key, m == "HEAD");
  if (m == "PUT") return PutObject(ex, bucket, key, auth);
  if (m == "DELETE") {
    if (auto r = backend_->Delete(bucket, key); !r) return SendBackendError(ex, r.error(), path);
    return ex.Send(204, CommonHeaders(), "");
  }
  SendError(ex, 405, "MethodNotAllowed",
            "The specified method is not allowed against this resource.", path);
}

// x-amz-rdma-token requests (docs/PROTOCOL.md). A malformed token, or one
// naming a window its connection did not register, is the client's bug: 400
// InvalidRDMAToken. A well-formed token this endpoint cannot serve (DC forms,
// no RDMA listener, a connection that is gone) is declined with 501 and
// x-amz-rdma-reply: 501; the client retries the same request over HTTP.
void S3Handler::RdmaDecline(Exchange& ex, const std::string& why, const std::string& resource,
                            const char* code) {
  pugi::xml_document doc;
  auto e = doc.append_child("Error");
  Text(e, "Code", code);
  Text(e, "Message", why + "; retry without the token");
  Text(e, "Resource", resource);
  Headers h = CommonHeaders();
  h.emplace_back("x-amz-rdma-reply", "501");
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(501, h, ToXml(doc));
}

void S3Handler::SendRdmaFailure(Exchange& ex, const s3rdmafs::Error& e,
                                const std::string& resource) {
  switch (e.code) {
    case Errc::kNotFound:  // no such connection (this server restarted): the client reconnects
      return RdmaDecline(ex, e.message, resource, "RDMAConnectionUnknown");
    case Errc::kAccessDenied:
    case Errc::kInvalidArgument:
      return SendError(ex, 400, "InvalidRDMAToken", e.message, resource);
    default:
      LOG_WARN("RDMA %s %s: %s", ex.request().method.c_str(), resource.c_str(), e.message.c_str());
      return SendError(ex, 500, "RDMATransferFailed", e.message, resource);
  }
}

void S3Handler::RdmaRequest(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                            const std::string& key) {
  const std::string resource = "/" + bucket + "/" + key;
  const Request& req = ex.request();
  if (!auth.access_key.empty() && !auth.Signed("x-amz-rdma-token"))
    return SendError(ex, 403, "AccessDenied",
                     "x-amz-rdma-token must be among the SigV4 SignedHeaders", resource);
  auto token = s3rdmafs::rdma::ParseToken(req.Header("x-amz-rdma-token"));
  if (!token) return SendError(ex, 400, "InvalidRDMAToken", token.error().message, resource);
  auto* rc = std::get_if<s3rdmafs::rdma::RcToken>(&*token);
  if (!rc) return RdmaDecline(ex, "this endpoint does not serve DC RDMA tokens", resource);
  if (!rdma_) return RdmaDecline(ex, "this endpoint has no RDMA listener", resource);
  if (upstream_)
    return req.method == "PUT" ? GatewayRdmaPut(ex, auth, bucket, key, *rc)
                               : GatewayRdmaGet(ex, auth, bucket, key, *rc);
  if (req.method == "PUT") return RdmaPut(ex, auth, bucket, key, *rc);

  auto opened = backend_->Open(bucket, key);
  if (!opened) return SendBackendError(ex, opened.error(), resource);
  int fd = opened->first;
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  const ObjectMeta& meta = opened->second;
  if (Evaluate(Conditions::Of(req), meta) != Verdict::kProceed)  // no 304 over RDMA
    return SendError(ex, 412, "PreconditionFailed",
                     "At least one of the pre-conditions you specified did not hold", resource);
  uint64_t first = 0, last = meta.size ? meta.size - 1 : 0;
  bool unsatisfiable = false;
  bool ranged = req.HasHeader("range") &&
                ParseRange(req.Header("range"), meta.size, &first, &last, &unsatisfiable);
  if (unsatisfiable)
    return SendError(ex, 416, "InvalidRange", "The requested range is not satisfiable", resource);
  uint64_t length = meta.size == 0 ? 0 : last - first + 1;
  uint64_t moved = 0;
  if (length > 0) {
    auto r = rdma_->WriteFromFile(auth.access_key, *rc, fd, first, length);
    if (!r) return SendRdmaFailure(ex, r.error(), resource);
    moved = *r;
    stats_->rdma_written += moved;
  }
  // Every RDMA WRITE of this request has completed: this reply is the fence.
  int status = ranged ? 206 : 200;
  Headers h = CommonHeaders();
  h.emplace_back("ETag", meta.etag);
  h.emplace_back("Last-Modified", HttpDate(meta.mtime_ns));
  if (ranged)
    h.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                        "/" + std::to_string(meta.size));
  h.emplace_back("x-amz-rdma-reply", std::to_string(status));
  h.emplace_back("x-amz-rdma-bytes-transferred", std::to_string(moved));
  LOG_DEBUG("RDMA GET %s: %llu bytes by RDMA WRITE on connection %016llx", resource.c_str(),
            static_cast<unsigned long long>(moved),
            static_cast<unsigned long long>(rc->connection));
  ex.Send(status, h, "");
}

// POST /bucket?rdma-connect: the signed half of binding an RC connection.
void S3Handler::RdmaConnect(Exchange& ex, const AuthResult& auth, const std::string& bucket) {
  std::string resource = "/" + bucket;
  std::string body;
  if (!ex.ReadBody([&](const char* d, size_t n) {
        body.append(d, n);
        return body.size() <= 4096;
      }))
    return;
  if (auth.payload_hash.size() == 64 && auth.payload_hash != s3::Sha256Hex(body))
    return SendError(ex, 400, "XAmzContentSHA256Mismatch",
                     "The provided 'x-amz-content-sha256' header does not match what was computed.",
                     resource);
  if (!rdma_) return RdmaDecline(ex, "this endpoint has no RDMA listener", resource);
  if (!upstream_)  // a gateway's upstream says at the first request
    if (auto b = backend_->BucketExists(bucket); !b)
      return SendBackendError(ex, b.error(), resource);
  auto h = rdma_->Prepare(auth.access_key, body);
  if (!h) return SendError(ex, 400, "InvalidArgument", h.error().message, resource);
  Headers headers = CommonHeaders();
  headers.emplace_back("Content-Type", "text/plain");
  ex.Send(200, headers, s3rdmafs::rdma::FormatHandshakeReply(*h));
}

// ListBuckets, paged as S3 pages it since 2024: max-buckets (1-10000) and an
// opaque continuation-token (here the last name of the page, encoded).
void S3Handler::ListBuckets(Exchange& ex) {
  auto query = ParseQuery(ex.request().raw_query);
  size_t max = 10000;
  if (query.count("max-buckets")) {
    const std::string& v = query["max-buckets"];
    if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(v) < 1 || std::stoul(v) > 10000)
      return SendError(ex, 400, "InvalidArgument", "max-buckets must be between 1 and 10000", "/");
    max = std::stoul(v);
  }
  std::string after;
  if (query.count("continuation-token") && !DecodeToken(query["continuation-token"], &after))
    return SendError(ex, 400, "InvalidArgument", "The continuation token provided is incorrect",
                     "/");
  const std::string& prefix = query["prefix"];
  auto buckets = backend_->ListBuckets();
  if (!buckets) return SendBackendError(ex, buckets.error(), "/");
  pugi::xml_document doc;
  auto root = Root(doc, "ListAllMyBucketsResult");
  AppendOwner(root);
  auto list = root.append_child("Buckets");
  size_t listed = 0;
  std::string last;
  bool more = false;
  for (auto& b : *buckets) {
    if (b.name <= after || b.name.compare(0, prefix.size(), prefix) != 0) continue;
    if (listed == max) {
      more = true;
      break;
    }
    auto node = list.append_child("Bucket");
    Text(node, "Name", b.name);
    Text(node, "CreationDate", Iso8601(b.created_ns));
    if (!b.location.empty()) Text(node, "BucketRegion", b.location);
    last = b.name;
    ++listed;
  }
  if (more) Text(root, "ContinuationToken", EncodeToken(last));
  if (!prefix.empty()) Text(root, "Prefix", prefix);
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(200, h, ToXml(doc));
}

void S3Handler::ListObjects(Exchange& ex, const std::string& bucket, Listing kind) {
  const bool v2 = kind == Listing::kV2, versions = kind == Listing::kVersions;
  auto query = ParseQuery(ex.request().raw_query);
  ListQuery q;
  q.prefix = query["prefix"];
  q.delimiter = query["delimiter"];
  if (query.count("max-keys")) {
    const std::string& mk = query["max-keys"];
    if (mk.empty() || mk.find_first_not_of("0123456789") != std::string::npos)
      return SendError(ex, 400, "InvalidArgument", "max-keys must be a non-negative integer",
                       "/" + bucket);
    q.max_keys = static_cast<uint32_t>(
        std::min<unsigned long long>(1000, strtoull(mk.c_str(), nullptr, 10)));
  }
  if (v2) {
    q.start_after = query["start-after"];
    if (query.count("continuation-token") &&
        !DecodeToken(query["continuation-token"], &q.start_after))
      return SendError(ex, 400, "InvalidArgument", "The continuation token provided is incorrect",
                       "/" + bucket);
  } else {
    q.start_after = query[versions ? "key-marker" : "marker"];
  }
  auto out = backend_->List(bucket, q);
  if (!out) return SendBackendError(ex, out.error(), "/" + bucket);
  bool url = query["encoding-type"] == "url";
  auto enc = [url](const std::string& s) { return url ? s3::UriEncode(s, false) : s; };

  pugi::xml_document doc;
  auto root = Root(doc, versions ? "ListVersionsResult" : "ListBucketResult");
  Text(root, "Name", bucket);
  // ListObjects v1 echoes its Prefix as given, even with encoding-type=url
  // (S3 encodes Key, Marker, NextMarker and Delimiter only; SDKs decode those).
  Text(root, "Prefix", v2 || versions ? enc(q.prefix) : q.prefix);
  if (versions) {
    Text(root, "KeyMarker", enc(q.start_after));
    Text(root, "VersionIdMarker", query["version-id-marker"]);
    if (out->truncated) {
      Text(root, "NextKeyMarker", enc(out->entries.back().key));
      Text(root, "NextVersionIdMarker", "null");
    }
  }
  if (!q.delimiter.empty()) Text(root, "Delimiter", enc(q.delimiter));
  Text(root, "MaxKeys", std::to_string(q.max_keys));
  if (url) Text(root, "EncodingType", "url");
  Text(root, "IsTruncated", out->truncated ? "true" : "false");
  if (versions) {
  } else if (v2) {
    Text(root, "KeyCount", std::to_string(out->entries.size()));
    if (query.count("continuation-token"))
      Text(root, "ContinuationToken", query["continuation-token"]);
    if (query.count("start-after")) Text(root, "StartAfter", enc(query["start-after"]));
    if (out->truncated) Text(root, "NextContinuationToken", EncodeToken(out->entries.back().key));
  } else {
    Text(root, "Marker", enc(q.start_after));
    if (out->truncated) Text(root, "NextMarker", enc(out->entries.back().key));
  }
  for (auto& e : out->entries) {
    if (e.is_prefix) continue;
    auto c = root.append_child(versions ? "Version" : "Contents");
    Text(c, "Key", enc(e.key));
    if (versions) {
      Text(c, "VersionId", "null");
      Text(c, "IsLatest", "true");
    }
    Text(c, "LastModified", Iso8601(e.meta.mtime_ns));
    Text(c, "ETag", e.meta.etag);
    Text(c, "Size", std::to_string(e.meta.size));
    if (!v2 || query["fetch-owner"] == "true") AppendOwner(c);
    Text(c, "StorageClass", "STANDARD");
  }
  for (auto& e : out->entries) {
    if (!e.is_prefix) continue;
    Text(root.append_child("CommonPrefixes"), "Prefix", enc(e.key));
  }
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(200, h, ToXml(doc));
}

// ListMultipartUploads: prefix, delimiter, key-marker + upload-id-marker,
// max-uploads (at most 1000).
void S3Handler::ListUploads(Exchange& ex, const std::string& bucket) {
  auto query = ParseQuery(ex.request().raw_query);
  const std::string resource = "/" + bucket;
  size_t max = 1000;
  if (query.count("max-uploads")) {
    const std::string& v = query["max-uploads"];
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
      return SendError(ex, 400, "InvalidArgument", "max-uploads must be a non-negative integer",
                       resource);
    max = std::min<size_t>(1000, std::stoul(v));
  }
  const std::string prefix = query["prefix"], delimiter = query["delimiter"];
  const std::string key_marker = query["key-marker"], id_marker = query["upload-id-marker"];
  auto uploads = uploads_.List(bucket, prefix);
  if (!uploads) return SendBackendError(ex, uploads.error(), resource);
  bool url = query["encoding-type"] == "url";
  auto enc = [url](const std::string& s) { return url ? s3::UriEncode(s, false) : s; };
  pugi::xml_document doc;
  auto root = Root(doc, "ListMultipartUploadsResult");
  Text(root, "Bucket", bucket);
  Text(root, "KeyMarker", enc(key_marker));
  Text(root, "UploadIdMarker", id_marker);
  Text(root, "Prefix", enc(prefix));
  if (!delimiter.empty()) Text(root, "Delimiter", enc(delimiter));
  Text(root, "MaxUploads", std::to_string(max));
  if (url) Text(root, "EncodingType", "url");
  std::vector<std::string> prefixes;
  size_t listed = 0;
  bool truncated = false;
  std::string next_key, next_id;
  for (const auto& u : *uploads) {
    // After the markers: past key-marker, or at it and past upload-id-marker.
    if (!key_marker.empty() &&
        (u.key < key_marker || (u.key == key_marker && (id_marker.empty() || u.id <= id_marker))))
      continue;
    if (!delimiter.empty()) {
      size_t at = u.key.find(delimiter, prefix.size());
      if (at != std::string::npos) {
        std::string cp = u.key.substr(0, at + delimiter.size());
        if (!prefixes.empty() && prefixes.back() == cp) continue;
        if (listed == max) {
          truncated = true;
          break;
        }
        prefixes.push_back(cp);
        ++listed;
        next_key = cp, next_id.clear();
        continue;
      }
    }
    if (listed == max) {
      truncated = true;
      break;
    }
    auto node = root.append_child("Upload");
    Text(node, "Key", enc(u.key));
    Text(node, "UploadId", u.id);
    for (const char* who : {"Initiator", "Owner"}) AppendOwner(node, who);
    Text(node, "StorageClass", "STANDARD");
    Text(node, "Initiated", Iso8601(u.initiated_ns));
    ++listed;
    next_key = u.key, next_id = u.id;
  }
  Text(root, "IsTruncated", truncated ? "true" : "false");
  if (truncated) {
    Text(root, "NextKeyMarker", enc(next_key));
    Text(root, "NextUploadIdMarker", next_id);
  }
  for (const auto& cp : prefixes) Text(root.append_child("CommonPrefixes"), "Prefix", enc(cp));
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(200, h, ToXml(doc));
}

void S3Handler::GetObject(Exchange& ex, const std::string& bucket, const std::string& key,
                          bool head) {
  std::string resource = "/" + bucket + "/" + key;
  auto opened = backend_->Open(bucket, key);
  if (!opened) return SendBackendError(ex, opened.error(), resource);
  int fd = opened->first;
  const ObjectMeta& meta = opened->second;
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  const Request& req = ex.request();
  Headers h = CommonHeaders();
  h.emplace_back("ETag", meta.etag);
  h.emplace_back("Last-Modified", HttpDate(meta.mtime_ns));
  h.emplace_back("Accept-Ranges", "bytes");
  switch (Evaluate(Conditions::Of(req), meta)) {
    case Verdict::kFailed:
      return SendError(ex, 412, "PreconditionFailed",
                       "At least one of the pre-conditions you specified did not hold", resource);
    case Verdict::kNotModified:
      return ex.SendHeadersOnly(304, h, 0);
    case Verdict::kProceed:
      break;
  }
  auto query = ParseQuery(req.raw_query);
  // response-* overrides replace what was stored, for this answer only.
  static constexpr std::pair<const char*, const char*> kOverrides[] = {
      {"response-content-type", "content-type"},
      {"response-content-language", "content-language"},
      {"response-expires", "expires"},
      {"response-cache-control", "cache-control"},
      {"response-content-disposition", "content-disposition"},
      {"response-content-encoding", "content-encoding"}};
  UserMeta shown = meta.user;
  for (const auto& [param, stored] : kOverrides) {
    if (!query.count(param)) continue;
    const char* header = stored;  // a plain variable: lambdas may not capture a binding
    std::erase_if(shown, [&](const auto& kv) { return kv.first == header; });
    shown.emplace_back(header, query[param]);
  }
  // Checksums go out when asked for (x-amz-checksum-mode: ENABLED), as on S3.
  const bool checksums = strcasecmp(req.Header("x-amz-checksum-mode").c_str(), "ENABLED") == 0;
  uint64_t first = 0, last = meta.size ? meta.size - 1 : 0;
  bool ranged = false;
  if (query.count("partNumber")) {
    // One part of a multipart object; a plain object is its own part 1.
    const std::string& v = query["partNumber"];
    uint64_t n = v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos
                     ? 0
                     : std::stoul(v);
    const std::vector<LocalBackend::PartRecord> records = LocalBackend::Parts(fd, meta.size);
    const size_t parts = records.empty() ? 1 : records.size();
    if (n == 0 || n > 10000)
      return SendError(ex, 400, "InvalidArgument",
                       "Part number must be an integer between 1 and 10000", resource);
    if (n > parts)
      return SendError(ex, 416, "InvalidPartNumber", "The requested partnumber is not satisfiable",
                       resource);
    if (!records.empty()) {
      first = 0;
      for (size_t i = 0; i + 1 < n; ++i) first += records[i].size;
      last = first + records[n - 1].size - 1;
      ranged = records[n - 1].size > 0;
      // The part's own checksum stands for the object's (none when not kept).
      for (auto& [k, value] : shown)
        if (k.rfind("x-amz-checksum-", 0) == 0 && k != "x-amz-checksum-type")
          value = records[n - 1].checksum;
      std::erase_if(shown, [](const auto& kv) {
        return kv.first.rfind("x-amz-checksum-", 0) == 0 && kv.second.empty();
      });
    }
    h.emplace_back("x-amz-mp-parts-count", std::to_string(parts));
  } else {
    bool unsatisfiable = false;
    ranged = req.HasHeader("range") &&
             ParseRange(req.Header("range"), meta.size, &first, &last, &unsatisfiable);
    if (unsatisfiable)
      return SendError(ex, 416, "InvalidRange", "The requested range is not satisfiable", resource);
  }
  bool typed = false;
  for (auto& [k, v] : shown) {
    if (!checksums && k.rfind("x-amz-checksum-", 0) == 0) continue;
    if (k == "x-amz-acl") continue;  // kept for ?acl (acl.h), no header of the object
    h.emplace_back(k, v);
    typed |= k == "content-type";
  }
  if (!typed) h.emplace_back("Content-Type", "application/octet-stream");
  uint64_t length = meta.size == 0 ? 0 : last - first + 1;
  int status = 200;
  if (ranged) {
    status = 206;
    h.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                        "/" + std::to_string(meta.size));
  }
  if (head) return ex.SendHeadersOnly(status, h, length);
  ex.SendFile(status, h, fd, first, length);
}

bool S3Handler::ReadXmlBody(Exchange& ex, const std::string& resource, pugi::xml_document* doc) {
  std::string body;
  if (!ex.ReadBody([&](const char* d, size_t n) {
        body.append(d, n);
        return body.size() < (4u << 20);
      }))
    return false;
  // Whitespace-only text stays (a key " " is a key), as S3 reads it.
  if (doc->load_string(body.c_str(), pugi::parse_default | pugi::parse_ws_pcdata_single))
    return true;
  SendError(ex, 400, "MalformedXML", "The XML you provided was not well-formed", resource);
  return false;
}

void S3Handler::DeleteObjects(Exchange& ex, const std::string& bucket) {
  pugi::xml_document in;
  if (!ReadXmlBody(ex, "/" + bucket, &in)) return;
  bool quiet = std::string(in.child("Delete").child_value("Quiet")) == "true";
  size_t count = 0;
  for (auto obj : in.child("Delete").children("Object")) (void)obj, ++count;
  if (count > 1000)
    return SendError(
        ex, 400, "MalformedXML",
        "DeleteObjects takes at most 1000 keys; this request has " + std::to_string(count),
        "/" + bucket);
  pugi::xml_document doc;
  auto root = Root(doc, "DeleteResult");
  for (auto obj : in.child("Delete").children("Object")) {
    std::string key = obj.child_value("Key");
    auto r = backend_->Delete(bucket, key);
    if (r && !quiet) Text(root.append_child("Deleted"), "Key", key);
    if (!r) {
      auto e = root.append_child("Error");
      Text(e, "Key", key);
      Text(e, "Code", "InternalError");
      Text(e, "Message", r.error().message);
    }
  }
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(200, h, ToXml(doc));
}

}  // namespace s3rdma::server
