// The writing half of the S3 handler: PutObject/UploadPart (HTTP body or RDMA
// READ), CopyObject, UploadPartCopy, and the multipart life cycle.
#include <openssl/evp.h>
#include <strings.h>
#include <unistd.h>

#include <pugixml.hpp>

#include "acl.h"
#include "auth.h"
#include "aws_chunked.h"
#include "checksums.h"
#include "conditions.h"
#include "rdma_endpoint.h"
#include "s3_handler.h"
#include "s3rdmafs/common/log.h"
#include "s3rdmafs/s3/sigv4.h"
#include "xml_util.h"

namespace s3rdma::server {

namespace s3 = s3rdmafs::s3;
using s3rdmafs::Errc;
using namespace xml_util;  // NOLINT

namespace {

// x-amz-meta-* and the standard headers S3 keeps with an object and sends
// back on GET and HEAD (names lowercased).
UserMeta UserMetaOf(const Request& req) {
  static constexpr std::string_view kKept[] = {"content-type",        "cache-control",
                                               "content-disposition", "content-encoding",
                                               "content-language",    "expires"};
  UserMeta user;
  for (auto& [name, value] : req.headers) {
    std::string n = name;
    for (char& c : n) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    if (n == "content-encoding") {
      // aws-chunked is how this request's body was framed, not what the
      // object is: S3 keeps the other codings (gzip) and drops it.
      if (std::string kept = WithoutAwsChunked(value); !kept.empty())
        user.emplace_back(n, std::move(kept));
    } else if (n.rfind("x-amz-meta-", 0) == 0 ||
               std::find(std::begin(kKept), std::end(kKept), n) != std::end(kKept)) {
      user.emplace_back(n, value);
    }
  }
  // The object's ACL (Handle has refused a bad x-amz-acl already).
  if (auto acl = RequestedAcl(req); acl && *acl != CannedAcl::kPrivate)
    user.emplace_back("x-amz-acl", NameOf(*acl));
  return user;
}

// Checks the body against x-amz-content-sha256 and Content-MD5 when sent.
LocalBackend::Verifier BodyVerifier(std::string payload_hash, std::string content_md5) {
  return [payload_hash = std::move(payload_hash), content_md5 = std::move(content_md5)](
             const std::string& md5_hex, const std::string& sha_hex) -> s3rdmafs::Result<void> {
    if (payload_hash.size() == 64 && payload_hash != sha_hex)
      return s3rdmafs::MakeS3Error(
          400, "XAmzContentSHA256Mismatch",
          "The provided 'x-amz-content-sha256' header does not match what was computed.");
    if (!content_md5.empty()) {
      unsigned char raw[16];
      for (size_t i = 0; i < 16; ++i)
        raw[i] = static_cast<unsigned char>(std::stoi(md5_hex.substr(2 * i, 2), nullptr, 16));
      if (Base64Of(raw, 16) != content_md5)
        return s3rdmafs::MakeS3Error(
            400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
    }
    return {};
  };
}

// "bucket/key" or "/bucket/key", %-encoded, maybe with "?versionId=...".
bool ParseCopySource(const std::string& header, std::string* bucket, std::string* key) {
  std::string raw = header.substr(0, header.find('?'));
  std::string decoded;
  if (!s3::UriDecode(raw, &decoded, false)) return false;
  if (!decoded.empty() && decoded[0] == '/') decoded.erase(0, 1);
  size_t slash = decoded.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == decoded.size()) return false;
  *bucket = decoded.substr(0, slash);
  *key = decoded.substr(slash + 1);
  return true;
}

// If-Match / If-None-Match: * of a PutObject or CompleteMultipartUpload.
WriteCondition ConditionOf(const Request& req) {
  WriteCondition c;
  c.if_match = req.Header("if-match");
  c.if_none_match = req.Header("if-none-match") == "*";
  return c;
}

// UploadPart's query: partNumber and uploadId (0 when this is a plain PUT).
uint32_t PartNumberOf(const std::map<std::string, std::string>& q) {
  auto it = q.find("partNumber");
  if (it == q.end() || it->second.empty() ||
      it->second.find_first_not_of("0123456789") != std::string::npos || it->second.size() > 5)
    return 0;
  return static_cast<uint32_t>(std::stoul(it->second));
}

}  // namespace

// The body as the object (PutObject, with the request's metadata) or as part
// N of an upload (UploadPart); the ETag it got.
s3rdmafs::Result<std::string> S3Handler::StoreBody(
    const std::string& bucket, const std::string& key, const Request& req, const UserMeta& user,
    const std::function<bool(const LocalBackend::Writer&)>& fill,
    const LocalBackend::Verifier& verify, bool want_sha256,
    std::optional<WantedChecksum>& checksum) {
  auto query = ParseQuery(req.raw_query);
  if (query.count("uploadId")) {
    uint32_t part = PartNumberOf(query);
    if (part == 0)
      return s3rdmafs::MakeError(Errc::kInvalidArgument,
                                 "Part number must be an integer between 1 and 10000");
    auto upload = uploads_.ChecksumOf(bucket, key, query["uploadId"]);
    if (!upload) return tl::unexpected(upload.error());
    if (*upload) {
      auto wanted = Checksum::Named((*upload)->algorithm);
      if (checksum && checksum->sum->header() != wanted->header())
        return s3rdmafs::MakeS3Error(400, "InvalidRequest",
                                     "The upload was created with " + wanted->header() +
                                         "; this part carries " + checksum->sum->header());
      if (!checksum) checksum = WantedChecksum{std::move(wanted), ""};
    }
    auto r = uploads_.UploadPart(
        bucket, key, query["uploadId"], part, fill,
        [&](const std::string& md5, const std::string& sha) -> s3rdmafs::Result<PartChecksum> {
          if (auto v = verify(md5, sha); !v) return tl::unexpected(v.error());
          if (!checksum) return PartChecksum{};
          return PartChecksum{checksum->sum->header().substr(15), checksum->expected};
        },
        want_sha256);
    if (!r) return tl::unexpected(r.error());
    return r->etag;
  }
  auto r = backend_->Put(bucket, key, user, fill, verify, want_sha256, ConditionOf(req));
  if (!r) return tl::unexpected(r.error());
  return r->etag;
}

void S3Handler::PutObject(Exchange& ex, const std::string& bucket, const std::string& key,
                          const AuthResult& auth) {
  std::string resource = "/" + bucket + "/" + key;
  const Request& req = ex.request();
  std::optional<AwsChunkedDecoder> chunked;
  if (auto form = AwsChunkedDecoder::ForBody(auth, &chunked); !form)
    return SendBackendError(ex, form.error(), resource);
  if (req.HasHeader("content-md5")) {
    // Base64 of 16 bytes: 22 characters and "==". Anything else is not a digest.
    const std::string v = req.Header("content-md5");
    if (v.size() != 24 || v.compare(22, 2, "==") != 0 ||
        v.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") !=
            22)
      return SendError(ex, 400, "InvalidDigest",
                       "The Content-MD5 you specified is not valid: '" + v + "'", resource);
  }
  auto checksum = ChecksumOf(req);
  if (!checksum) return SendBackendError(ex, checksum.error(), resource);
  if (chunked)
    if (auto t = AddTrailerChecksum(req, &*checksum); !t)
      return SendBackendError(ex, t.error(), resource);
  bool body_ok = true;
  s3rdmafs::Result<void> decoded;
  auto fill = [&](const LocalBackend::Writer& w) {
    auto store = [&](const char* d, size_t n) {
      if (*checksum) (*checksum)->sum->Update(d, n);
      return w(d, n);
    };
    if (!chunked) return body_ok = ex.ReadBody(store);
    body_ok = ex.ReadBody([&](const char* d, size_t n) {
      decoded = chunked->Feed(d, n, store);
      return static_cast<bool>(decoded);
    });
    if (body_ok) decoded = chunked->Finish();
    if (decoded && req.HasHeader("x-amz-decoded-content-length") &&
        req.Header("x-amz-decoded-content-length") != std::to_string(chunked->decoded_bytes()))
      decoded = s3rdmafs::MakeS3Error(400, "IncompleteBody",
                                      "x-amz-decoded-content-length does not match the chunks");
    return body_ok && static_cast<bool>(decoded);
  };
  UserMeta user = UserMetaOf(req);
  auto verify = [&, digests = BodyVerifier(auth.payload_hash, req.Header("content-md5"))](
                    const std::string& md5, const std::string& sha) -> s3rdmafs::Result<void> {
    if (auto r = digests(md5, sha); !r) return r;
    if (!*checksum) return {};
    if (chunked && chunked->trailers().count((*checksum)->sum->header()))
      (*checksum)->expected = chunked->trailers().at((*checksum)->sum->header());
    if (auto r = CheckDigest(**checksum); !r) return r;
    user.emplace_back((*checksum)->sum->header(), (*checksum)->expected);
    user.emplace_back("x-amz-checksum-type", "FULL_OBJECT");
    return {};
  };
  const bool want_sha = auth.payload_hash.size() == 64;  // UNSIGNED-PAYLOAD: nothing to check
  auto stored = StoreBody(bucket, key, req, user, fill, verify, want_sha, *checksum);
  s3rdmafs::Error error = stored ? s3rdmafs::Error() : stored.error();
  std::string etag = stored ? *stored : "";
  if (etag.empty()) {
    if (!decoded) return SendBackendError(ex, decoded.error(), resource);
    if (!body_ok && error.s3_code.empty())
      return;  // the client went away mid-upload; nothing was published
    return SendBackendError(ex, error, resource);
  }
  Headers h = CommonHeaders();
  h.emplace_back("ETag", etag);
  if (*checksum) h.emplace_back((*checksum)->sum->header(), (*checksum)->expected);
  ex.Send(200, h, "");
}

// PUT (or UploadPart) with a token: the bytes are the token's window,
// RDMA-READ from the client. A crc32c checksum header, when sent, is verified
// before the object or part is stored (a mis-read never becomes data).
void S3Handler::RdmaPut(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                        const std::string& key, const s3rdmafs::rdma::RcToken& token) {
  const std::string resource = "/" + bucket + "/" + key;
  const Request& req = ex.request();
  std::string length = req.Header("content-length");
  if (!length.empty() && length != "0")
    return SendError(ex, 400, "InvalidRequest", "an RDMA PUT carries no body (Content-Length: 0)",
                     resource);
  auto checksum = ChecksumOf(req);
  if (!checksum) return SendBackendError(ex, checksum.error(), resource);
  s3rdmafs::Error transfer_error;
  bool transfer_failed = false;
  auto fill = [&](const LocalBackend::Writer& w) {
    auto moved = rdma_->ReadToSink(auth.access_key, token, [&](const char* d, size_t n) {
      if (*checksum) (*checksum)->sum->Update(d, n);
      return w(d, n);
    });
    if (!moved) {
      transfer_error = moved.error();
      transfer_failed = true;
    }
    return static_cast<bool>(moved);
  };
  UserMeta user = UserMetaOf(req);
  auto verify = [&](const std::string&, const std::string&) -> s3rdmafs::Result<void> {
    if (!*checksum) return {};
    if (auto r = CheckDigest(**checksum); !r) return r;  // a mis-read never becomes data
    user.emplace_back((*checksum)->sum->header(), (*checksum)->expected);
    user.emplace_back("x-amz-checksum-type", "FULL_OBJECT");
    return {};
  };
  auto stored = StoreBody(bucket, key, req, user, fill, verify, false, *checksum);
  s3rdmafs::Error error = stored ? s3rdmafs::Error() : stored.error();
  std::string etag = stored ? *stored : "";
  if (transfer_failed) return SendRdmaFailure(ex, transfer_error, resource);
  if (etag.empty()) {
    return SendBackendError(ex, error, resource);
  }
  stats_->rdma_read += token.size;
  Headers h = CommonHeaders();
  h.emplace_back("ETag", etag);
  h.emplace_back("x-amz-rdma-reply", "200");
  h.emplace_back("x-amz-rdma-bytes-transferred", std::to_string(token.size));
  const bool checked = *checksum && !(*checksum)->expected.empty();
  LOG_DEBUG("RDMA PUT %s: %u bytes by RDMA READ%s%s", resource.c_str(), token.size,
            checked ? ", checked against " : ", no checksum sent",
            checked ? (*checksum)->sum->header().c_str() : "");
  ex.Send(200, h, "");
}

// CopyObject, or UploadPartCopy when the query names an upload.
void S3Handler::CopyObject(Exchange& ex, const std::string& bucket, const std::string& key) {
  std::string resource = "/" + bucket + "/" + key;
  const Request& req = ex.request();
  std::string src_bucket, src_key;
  if (!ParseCopySource(req.Header("x-amz-copy-source"), &src_bucket, &src_key))
    return SendError(ex, 400, "InvalidArgument", "x-amz-copy-source must be bucket/key", resource);
  // x-amz-copy-source-if-*: any that does not hold is 412, "not modified" too.
  const Conditions source_conditions = Conditions::Of(req, "x-amz-copy-source-");
  auto admit = [&](const ObjectMeta& source) -> s3rdmafs::Result<void> {
    if (Evaluate(source_conditions, source) == Verdict::kProceed) return {};
    return s3rdmafs::MakeS3Error(412, "PreconditionFailed",
                                 "At least one of the pre-conditions you specified did not hold");
  };
  auto query = ParseQuery(req.raw_query);
  if (query.count("uploadId")) {
    uint32_t part = PartNumberOf(query);
    if (part == 0)
      return SendError(ex, 400, "InvalidArgument",
                       "Part number must be an integer between 1 and 10000", resource);
    auto src = backend_->Open(src_bucket, src_key);
    if (!src) return SendBackendError(ex, src.error(), "/" + src_bucket + "/" + src_key);
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{src->first};
    const ObjectMeta& meta = src->second;
    if (auto ok = admit(meta); !ok) return SendBackendError(ex, ok.error(), resource);
    uint64_t first = 0, last = meta.size ? meta.size - 1 : 0;
    if (req.HasHeader("x-amz-copy-source-range")) {
      const std::string& range = req.Header("x-amz-copy-source-range");
      switch (ParseCopyRange(range, meta.size, &first, &last)) {
        case CopySourceRange::kOk:
          break;
        case CopySourceRange::kMalformed:
          return SendError(ex, 400, "InvalidArgument",
                           "x-amz-copy-source-range '" + range + "' is not bytes=first-last",
                           resource);
        case CopySourceRange::kOutside:
          return SendError(ex, 416, "InvalidRange",
                           "x-amz-copy-source-range '" + range + "' is outside the source (" +
                               std::to_string(meta.size) + " bytes)",
                           resource);
      }
    }
    uint64_t length = meta.size == 0 ? 0 : last - first + 1;
    auto r = uploads_.CopyPart(bucket, key, query["uploadId"], part, src->first, first, length);
    if (!r) return SendBackendError(ex, r.error(), resource);
    pugi::xml_document doc;
    auto root = Root(doc, "CopyPartResult");
    Text(root, "LastModified", Iso8601(r->mtime_ns));
    Text(root, "ETag", r->etag);
    if (!r->checksum.value.empty())
      Text(root, ChecksumElement(r->checksum.algorithm).c_str(), r->checksum.value);
    Headers h = CommonHeaders();
    h.emplace_back("Content-Type", "application/xml");
    return ex.Send(200, h, ToXml(doc));
  }
  std::string directive = req.Header("x-amz-metadata-directive");
  if (!directive.empty() && directive != "COPY" && directive != "REPLACE")
    return SendError(ex, 400, "InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE",
                     resource);
  if (directive != "REPLACE" && src_bucket == bucket && src_key == key)
    return SendError(ex, 400, "InvalidRequest",
                     "This copy request is illegal because it is trying to copy an object to "
                     "itself without changing the object's metadata.",
                     resource);
  // The copy carries the source's metadata or the request's (REPLACE), and
  // in both cases the ACL this request names: S3 copies no ACL.
  auto copy_admit = [&](const ObjectMeta& source) -> s3rdmafs::Result<UserMeta> {
    if (auto ok = admit(source); !ok) return tl::unexpected(ok.error());
    UserMeta user = UserMetaOf(req);
    if (directive == "REPLACE") return user;
    UserMeta kept = source.user;
    std::erase_if(kept, [](const auto& kv) { return kv.first == "x-amz-acl"; });
    for (auto& kv : user)
      if (kv.first == "x-amz-acl") kept.push_back(kv);
    return kept;
  };
  auto r = backend_->Copy(src_bucket, src_key, copy_admit, bucket, key);
  if (!r) return SendBackendError(ex, r.error(), resource);
  pugi::xml_document doc;
  auto root = Root(doc, "CopyObjectResult");
  Text(root, "LastModified", Iso8601(r->mtime_ns));
  Text(root, "ETag", r->etag);
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(200, h, ToXml(doc));
}

void S3Handler::CreateUpload(Exchange& ex, const std::string& bucket, const std::string& key) {
  auto checksum = UploadChecksumOf(ex.request());
  if (!checksum) return SendBackendError(ex, checksum.error(), "/" + bucket + "/" + key);
  auto id = uploads_.Create(bucket, key, UserMetaOf(ex.request()), *checksum);
  if (!id) return SendBackendError(ex, id.error(), "/" + bucket + "/" + key);
  pugi::xml_document doc;
  auto root = Root(doc, "InitiateMultipartUploadResult");
  Text(root, "Bucket", bucket);
  Text(root, "Key", key);
  Text(root, "UploadId", *id);
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  if (*checksum) {
    h.emplace_back("x-amz-checksum-algorithm", ChecksumElement((*checksum)->algorithm).substr(8));
    h.emplace_back("x-amz-checksum-type", (*checksum)->TypeName());
  }
  ex.Send(200, h, ToXml(doc));
}

void S3Handler::CompleteUpload(Exchange& ex, const std::string& bucket, const std::string& key) {
  std::string resource = "/" + bucket + "/" + key;
  pugi::xml_document in;
  if (!ReadXmlBody(ex, resource, &in)) return;
  std::vector<CompletedPart> parts;
  for (auto p : in.child("CompleteMultipartUpload").children("Part")) {
    CompletedPart part{p.child("PartNumber").text().as_uint(), p.child_value("ETag"), {}};
    for (auto c : p.children()) {
      std::string name = c.name();
      if (name.rfind("Checksum", 0) != 0 || name == "ChecksumType") continue;
      for (char& ch : name) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
      part.checksum = {name.substr(8), c.text().get()};
    }
    parts.push_back(std::move(part));
  }
  MultipartUploads::Claim claim;
  auto claimed = ChecksumOf(ex.request());
  if (!claimed) return SendBackendError(ex, claimed.error(), resource);
  if (*claimed && !(*claimed)->expected.empty())
    claim.checksum = {(*claimed)->sum->header().substr(15), (*claimed)->expected};
  claim.type = ex.request().Header("x-amz-checksum-type");
  auto query = ParseQuery(ex.request().raw_query);
  auto r =
      uploads_.Complete(bucket, key, query["uploadId"], parts, ConditionOf(ex.request()), claim);
  if (!r) return SendBackendError(ex, r.error(), resource);
  pugi::xml_document doc;
  auto root = Root(doc, "CompleteMultipartUploadResult");
  Text(root, "Location", resource);
  Text(root, "Bucket", bucket);
  Text(root, "Key", key);
  Text(root, "ETag", r->etag);
  // The object's checksum, also for a retried Complete (it is the object's).
  for (const auto& [name, value] : r->user)
    if (name.rfind("x-amz-checksum-", 0) == 0 && name != "x-amz-checksum-type")
      Text(root, ChecksumElement(name.substr(15)).c_str(), value);
    else if (name == "x-amz-checksum-type")
      Text(root, "ChecksumType", value);
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(200, h, ToXml(doc));
}

void S3Handler::ListUploadParts(Exchange& ex, const std::string& bucket, const std::string& key) {
  auto query = ParseQuery(ex.request().raw_query);
  auto parts = uploads_.ListParts(bucket, key, query["uploadId"]);
  if (!parts) return SendBackendError(ex, parts.error(), "/" + bucket + "/" + key);
  pugi::xml_document doc;
  auto root = Root(doc, "ListPartsResult");
  Text(root, "Bucket", bucket);
  Text(root, "Key", key);
  Text(root, "UploadId", query["uploadId"]);
  if (auto c = uploads_.ChecksumOf(bucket, key, query["uploadId"]); c && *c) {
    Text(root, "ChecksumAlgorithm", ChecksumElement((*c)->algorithm).substr(8));
    Text(root, "ChecksumType", (*c)->TypeName());
  }
  Text(root, "IsTruncated", "false");
  for (auto& p : *parts) {
    auto node = root.append_child("Part");
    Text(node, "PartNumber", std::to_string(p.number));
    Text(node, "LastModified", Iso8601(p.mtime_ns));
    Text(node, "ETag", p.etag);
    Text(node, "Size", std::to_string(p.size));
    if (!p.checksum.value.empty())
      Text(node, ChecksumElement(p.checksum.algorithm).c_str(), p.checksum.value);
  }
  Headers h = CommonHeaders();
  h.emplace_back("Content-Type", "application/xml");
  ex.Send(200, h, ToXml(doc));
}

}  // namespace s3rdma::server
