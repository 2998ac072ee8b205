#include "s3rdmafs/s3/s3_client.h"

#include <chrono>
#include <functional>
#include <future>
#include <random>

#include "s3rdmafs/common/endpoint_list.h"
#include "s3rdmafs/common/log.h"
#include "s3rdmafs/s3/xml.h"

namespace s3rdmafs::s3 {

Error ErrorFromResponse(const HttpResponse& r, const std::string& what) {
  S3ErrorBody body = ParseErrorBody(r.body);
  std::string detail =
      what + ": " + (body.code.empty() ? "HTTP " + std::to_string(r.status) : body.code);
  if (!body.message.empty()) detail += " (" + body.message + ")";
  Errc code = Errc::kBadRequest;
  const std::string& c = body.code;
  if (c == "NoSuchKey")
    code = Errc::kNoSuchKey;
  else if (c == "NoSuchUpload")
    code = Errc::kNoSuchUpload;
  else if (c == "NoSuchBucket")
    code = Errc::kNoSuchBucket;
  else if (c == "AccessDenied" || c == "SignatureDoesNotMatch" || c == "InvalidAccessKeyId" ||
           c == "ExpiredToken" || c == "InvalidToken" || c == "RequestTimeTooSkewed")
    code = Errc::kAccessDenied;
  else if (c == "PreconditionFailed")
    code = Errc::kPreconditionFailed;
  else if (c == "SlowDown" || r.status == 503)
    code = Errc::kSlowDown;
  else if (c == "InvalidRange" || r.status == 416)
    code = Errc::kInvalidRange;
  else if (r.status == 501)  // NotImplemented: asking again changes nothing
    code = Errc::kNotSupported;
  else if (r.status >= 500)
    code = Errc::kServerError;
  else if (r.status == 404)
    code = Errc::kNoSuchKey;
  else if (r.status == 403 || r.status == 401)
    code = Errc::kAccessDenied;
  else if (r.status == 412)
    code = Errc::kPreconditionFailed;
  Error e(code, detail, r.status);
  e.s3_code = body.code;
  return e;
}

bool IsRetryable(const Error& e) {
  switch (e.code) {
    case Errc::kConnection:
    case Errc::kTimedOut:
    case Errc::kServerError:
    case Errc::kSlowDown:
      return true;
    default:
      return false;
  }
}

namespace {
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Result<std::unique_ptr<S3Client>> S3Client::Create(S3ClientOptions options, CurlEngine* engine) {
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  for (const std::string& one : SplitEndpointList(options.endpoint)) {
    std::string_view ep = one;
    size_t sep = ep.find("://");
    if (sep == std::string_view::npos)
      return MakeError(Errc::kConfig, "endpoint '" + std::string(ep) + "' has no scheme");
    auto e = std::make_unique<Endpoint>();
    e->scheme = std::string(ep.substr(0, sep));
    std::string_view rest = ep.substr(sep + 3);
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find('/') != std::string_view::npos)
      return MakeError(Errc::kConfig, "endpoint '" + std::string(ep) + "' must not have a path");
    if (rest.empty())
      return MakeError(Errc::kConfig, "endpoint '" + std::string(ep) + "' has no host");
    e->host_port = std::string(rest);
    endpoints.push_back(std::move(e));
  }
  if (endpoints.empty()) return MakeError(Errc::kConfig, "no endpoint given");
  std::unique_ptr<S3Client> c(new S3Client(std::move(options), engine));
  c->endpoints_ = std::move(endpoints);
  return c;
}

S3Client::Target S3Client::MakeTarget(std::string_view key, std::string_view raw_query) const {
  Target t;
  std::string path = "/";
  if (!options_.virtual_hosted) path += UriEncode(options_.bucket, true) + "/";
  path += UriEncode(key, false);
  t.canonical_uri = path;
  if (!raw_query.empty()) t.query = "?" + std::string(raw_query);
  t.affinity = std::hash<std::string_view>()(key);
  t.url = At(t, 0).url;
  t.host = At(t, 0).host;
  return t;
}

S3Client::Target S3Client::At(const Target& t, size_t endpoint) const {
  Target out = t;
  const Endpoint& e = *endpoints_[endpoint];
  out.host = options_.virtual_hosted ? options_.bucket + "." + e.host_port : e.host_port;
  out.url = e.scheme + "://" + out.host + t.canonical_uri + t.query;
  return out;
}

Lane S3Client::LaneOf(RequestKind kind) {
  switch (kind) {
    case RequestKind::kGet:
    case RequestKind::kPut:
    case RequestKind::kUploadPart:
    case RequestKind::kCopy:
    case RequestKind::kCopyPart:
    case RequestKind::kRdmaGet:
    case RequestKind::kRdmaPut:
      return Lane::kData;
    default:  // HEAD, LIST, upload bookkeeping, DELETE, the RDMA handshake
      return Lane::kMetadata;
  }
}

size_t S3Client::EndpointFor(std::string_view key, uint64_t offset) const {
  return Pick(RequestKind::kGet, Spread(std::hash<std::string_view>()(key), offset), 0);
}

uint64_t S3Client::Spread(uint64_t affinity, uint64_t offset) {
  return affinity ^ ((offset / kSpreadBytes) * 0x9E3779B97F4A7C15ull);
}

size_t S3Client::Pick(RequestKind kind, uint64_t affinity, uint32_t attempt) const {
  const size_t n = endpoints_.size();
  if (n == 1) return 0;
  // An RDMA request belongs to one endpoint, whose connection its token
  // names: its affinity is that endpoint's index, and it never moves.
  if (kind == RequestKind::kRdmaGet || kind == RequestKind::kRdmaPut ||
      kind == RequestKind::kRdmaConnect)
    return affinity % n;
  const int64_t now = NowMs();
  const size_t first = (affinity + attempt) % n;
  for (size_t i = 0; i < n; ++i) {
    size_t at = (first + i) % n;
    if (endpoints_[at]->down_until_ms.load() <= now) return at;
  }
  return first;  // all of them failed lately: keep trying in turn
}

void S3Client::Execute(RequestKind kind, uint64_t affinity,
                       std::function<HttpRequest(size_t)> build,
                       std::function<void(Result<HttpResponse>)> done, uint32_t attempt) {
  const size_t endpoint = Pick(kind, affinity, attempt);
  HttpRequest req = build(endpoint);
  req.lane = LaneOf(kind);
  requests_[static_cast<size_t>(kind)].fetch_add(1);
  std::string what = req.method + " " + req.url;
  engine_->Submit(
      std::move(req), [this, kind, affinity, endpoint, build = std::move(build),
                       done = std::move(done), attempt, what](Result<HttpResponse> r) mutable {
        Result<HttpResponse> outcome = std::move(r);
        if (outcome && outcome->status >= 300)
          outcome = tl::unexpected(ErrorFromResponse(*outcome, what));
        // An RDMA request that got no answer may still be queued on the
        // server with its token: sent again, two transfers would share one
        // window, and the late one could land after the caller reused it.
        // It goes back to the caller, which quarantines the window first.
        const bool rdma = kind == RequestKind::kRdmaGet || kind == RequestKind::kRdmaPut;
        const bool unanswered = !outcome && outcome.error().http_status == 0;
        if (!outcome && IsRetryable(outcome.error()) && rdma && unanswered) {
          if (endpoints_.size() > 1)  // its S3 requests move at once; this one rests a while
            endpoints_[endpoint]->down_until_ms.store(NowMs() + kEndpointRestMs);
        } else if (!outcome && IsRetryable(outcome.error()) && attempt < options_.max_retries) {
          uint64_t delay = 0;
          const Errc code = outcome.error().code;
          const bool unreachable = code == Errc::kConnection || code == Errc::kTimedOut ||
                                   outcome.error().http_status == 503;
          if (unreachable && endpoints_.size() > 1) {
            // Another endpoint takes over at once; this one rests a while.
            endpoints_[endpoint]->down_until_ms.store(NowMs() + kEndpointRestMs);
            failovers_.fetch_add(1);
          }
          if (Pick(kind, affinity, attempt + 1) == endpoint) {
            // Full jitter: uniform in [0, min(max, base * 2^attempt)].
            thread_local std::mt19937_64 rng{std::random_device{}()};
            uint64_t cap = std::min(options_.retry_max_delay_ms,
                                    options_.retry_base_delay_ms << std::min(attempt, 20u));
            delay = std::uniform_int_distribution<uint64_t>(cap / 2, cap)(rng);
          }
          LOG_WARN("retry %u/%u in %llu ms: %s", attempt + 1, options_.max_retries,
                   static_cast<unsigned long long>(delay), outcome.error().ToString().c_str());
          retries_.fetch_add(1);
          engine_->After(std::chrono::milliseconds(delay),
                         [this, kind, affinity, build = std::move(build), done = std::move(done),
                          attempt]() mutable {
                           Execute(kind, affinity, std::move(build), std::move(done), attempt + 1);
                         });
          return;
        }
        if (!outcome) ++failures_[static_cast<size_t>(outcome.error().code)];
        done(std::move(outcome));
      });
}

namespace {

// Bodies sent from caller memory are not hashed (UNSIGNED-PAYLOAD): hashing
// multi-GiB uploads would cost more CPU than sending them; TLS or TCP guards them.
constexpr const char* kUnsignedPayload = "UNSIGNED-PAYLOAD";

HttpRequest Signed(const S3ClientOptions& o, const S3Client::Target& t, std::string method,
                   std::string_view raw_query, HeaderList extra, std::string body = "",
                   bool unsigned_payload = false) {
  HttpRequest req;
  req.method = std::move(method);
  req.url = t.url;
  req.headers.emplace_back("Host", t.host);
  for (auto& h : extra) req.headers.push_back(std::move(h));
  std::string payload_hash = unsigned_payload ? kUnsignedPayload
                             : body.empty()   ? std::string(kEmptySha256)
                                              : Sha256Hex(body);
  SignRequest(o.credentials, o.region, req.method, t.canonical_uri, raw_query, payload_hash,
              std::time(nullptr), &req.headers);
  req.body = std::move(body);
  return req;
}

}  // namespace

namespace {
// The standard headers an object keeps (Metadata keys ":<name>"), so a
// metadata copy can send them back.
bool IsKeptHeader(const std::string& name) {
  return name == "content-type" || name == "cache-control" || name == "content-encoding" ||
         name == "content-disposition" || name == "content-language" || name == "expires";
}

// The attributes a HEAD (or a GET, which carries the same headers) gives.
ObjectInfo InfoFromHeaders(const std::string& key, const HttpResponse& r) {
  ObjectInfo info;
  info.key = key;
  if (auto* v = r.Header("content-length")) info.size = strtoull(v->c_str(), nullptr, 10);
  if (auto* v = r.Header("etag")) info.etag = *v;
  if (auto* v = r.Header("last-modified")) ParseHttpDate(*v, &info.mtime_ns);
  info.has_meta = true;
  for (auto& [name, value] : r.headers)
    if (name.rfind("x-amz-meta-", 0) == 0)
      info.meta[name.substr(11)] = value;
    else if (IsKeptHeader(name))
      info.meta[":" + name] = value;
  return info;
}

}  // namespace

void S3Client::HeadAsync(const std::string& key, std::function<void(Result<ObjectInfo>)> done) {
  Target t = MakeTarget(key, "");
  Execute(
      RequestKind::kHead, t.affinity,
      [this, t](size_t e) { return Signed(options_, At(t, e), "HEAD", "", {}); },
      [key, done = std::move(done)](Result<HttpResponse> r) {
        if (!r) return done(tl::unexpected(r.error()));
        done(InfoFromHeaders(key, *r));
      });
}

void S3Client::HeadWithBodyAsync(const std::string& key, std::span<std::byte> into,
                                 std::function<void(Result<HeadWithBody>)> done) {
  if (into.empty()) return done(MakeError(Errc::kInvalidArgument, "no room for a body"));
  Target t = MakeTarget(key, "");
  HeaderList extra;
  extra.emplace_back("Range", "bytes=0-" + std::to_string(into.size() - 1));
  Execute(
      RequestKind::kGet, t.affinity,
      [this, t, extra, into](size_t e) {
        HttpRequest req = Signed(options_, At(t, e), "GET", "", extra);
        req.sink = {into};
        return req;
      },
      [key, done = std::move(done)](Result<HttpResponse> r) {
        if (!r) return done(tl::unexpected(r.error()));
        HeadWithBody h;
        h.info = InfoFromHeaders(key, *r);
        h.bytes = r->sink_bytes;
        if (r->status == 206) {  // Content-Range: bytes 0-N/TOTAL names the object's size
          auto* range = r->Header("content-range");
          size_t slash = range ? range->rfind('/') : std::string::npos;
          if (slash == std::string::npos || (*range)[slash + 1] == '*')
            return done(MakeError(Errc::kProtocol, "GET " + key + ": 206 without a total size"));
          h.info.size = strtoull(range->c_str() + slash + 1, nullptr, 10);
        } else if (r->status != 200) {
          return done(MakeError(Errc::kProtocol,
                                "GET " + key + ": expected 206, got " + std::to_string(r->status),
                                r->status));
        }
        if (h.bytes > h.info.size)
          return done(
              MakeError(Errc::kProtocol, "GET " + key + ": more bytes than the object has"));
        done(std::move(h));
      });
}

void S3Client::ListAsync(const ListRequest& request, std::function<void(Result<ListPage>)> done) {
  std::string q = "list-type=2&encoding-type=url&max-keys=" + std::to_string(request.max_keys);
  if (!request.prefix.empty()) q += "&prefix=" + UriEncode(request.prefix, true);
  if (!request.delimiter.empty()) q += "&delimiter=" + UriEncode(request.delimiter, true);
  if (!request.continuation_token.empty())
    q += "&continuation-token=" + UriEncode(request.continuation_token, true);
  Target t = MakeTarget("", q);
  Execute(
      RequestKind::kList, t.affinity,
      [this, t, q](size_t e) { return Signed(options_, At(t, e), "GET", q, {}); },
      [done = std::move(done)](Result<HttpResponse> r) {
        if (!r) return done(tl::unexpected(r.error()));
        done(ParseListObjectsV2(r->body));
      });
}

void S3Client::GetAsync(GetRequest request, std::function<void(Result<GetResult>)> done) {
  if (request.length == 0) return done(GetResult{});
  Target t = MakeTarget(request.key, "");
  t.affinity = Spread(t.affinity, request.offset);  // one file's ranges from several endpoints
  HeaderList extra;
  extra.emplace_back("Range", "bytes=" + std::to_string(request.offset) + "-" +
                                  std::to_string(request.offset + request.length - 1));
  if (!request.if_match.empty()) extra.emplace_back("If-Match", request.if_match);
  auto shared = std::make_shared<GetRequest>(std::move(request));
  Execute(
      RequestKind::kGet, t.affinity,
      [this, t, extra, shared](size_t e) {
        HttpRequest req = Signed(options_, At(t, e), "GET", "", extra);
        req.sink = shared->into;
        return req;
      },
      [shared, done = std::move(done)](Result<HttpResponse> r) {
        if (!r) return done(tl::unexpected(r.error()));
        if (r->status != 206 && !(r->status == 200 && shared->offset == 0))
          return done(MakeError(Errc::kProtocol,
                                "GET " + shared->key + ": expected 206 Partial Content, got " +
                                    std::to_string(r->status),
                                r->status));
        if (r->sink_bytes != shared->length)
          return done(MakeError(Errc::kConnection, "GET " + shared->key + ": short body: " +
                                                       std::to_string(r->sink_bytes) + " of " +
                                                       std::to_string(shared->length) + " bytes"));
        GetResult g;
        g.bytes = r->sink_bytes;
        if (auto* v = r->Header("etag")) g.etag = *v;
        if (!shared->if_match.empty() && !g.etag.empty() &&
            BareEtag(g.etag) != BareEtag(shared->if_match))
          return done(
              MakeError(Errc::kPreconditionFailed, "GET " + shared->key + ": ETag changed"));
        done(std::move(g));
      });
}

namespace {

void AddMetadata(const Metadata& meta, HeaderList* headers) {
  for (auto& [name, value] : meta)
    headers->emplace_back(name.rfind(':', 0) == 0 ? name.substr(1) : "x-amz-meta-" + name, value);
}

// A write's If-Match and a copy's x-amz-copy-source-if-match go out bare:
// Ceph RGW 16 compares them with the unquoted ETag byte for byte, so the
// quoted form (RFC 9110's) always fails there with 412, while AWS, MinIO and
// s3rdma-server take either form (tests/compat/test_radosgw_mount.py).
void AddCondition(const WriteCondition& c, HeaderList* headers) {
  if (!c.if_match.empty()) headers->emplace_back("If-Match", BareEtag(c.if_match));
  if (c.if_none_match) headers->emplace_back("If-None-Match", "*");
}

std::string PartQuery(uint32_t number, const std::string& upload_id) {
  return "partNumber=" + std::to_string(number) + "&uploadId=" + UriEncode(upload_id, true);
}

// x-amz-copy-source: /bucket/key, %-encoded.
std::string CopySource(const S3ClientOptions& o, const std::string& key) {
  return "/" + UriEncode(o.bucket, true) + "/" + UriEncode(key, false);
}

// Answers whose body is an XML result carrying one field we need.
std::function<void(Result<HttpResponse>)> ExpectField(
    const char* root, const char* field, std::function<void(Result<std::string>)> done) {
  return [root, field, done = std::move(done)](Result<HttpResponse> r) {
    if (!r) return done(tl::unexpected(r.error()));
    done(ParseResultField(r->body, root, field));
  };
}

std::function<void(Result<HttpResponse>)> ExpectEtag(
    std::string what, std::function<void(Result<std::string>)> done) {
  return [what = std::move(what), done = std::move(done)](Result<HttpResponse> r) {
    if (!r) return done(tl::unexpected(r.error()));
    const std::string* etag = r->Header("etag");
    if (!etag) return done(MakeError(Errc::kProtocol, what + ": the answer has no ETag"));
    done(*etag);
  };
}

}  // namespace

void S3Client::PutAsync(PutRequest request, std::function<void(Result<std::string>)> done) {
  bool part = !request.upload_id.empty();
  std::string q = part ? PartQuery(request.part_number, request.upload_id) : "";
  Target t = MakeTarget(request.key, q);
  HeaderList extra;
  if (!part) AddMetadata(request.meta, &extra);
  if (!part) AddCondition(request.condition, &extra);
  auto shared = std::make_shared<PutRequest>(std::move(request));
  Execute(
      part ? RequestKind::kUploadPart : RequestKind::kPut, t.affinity,
      [this, t, q, extra, shared](size_t e) {
        HttpRequest req = Signed(options_, At(t, e), "PUT", q, extra, "", true);
        req.upload = shared->body;
        req.upload_file = shared->body_file;
        return req;
      },
      ExpectEtag("PUT " + shared->key, std::move(done)));
}

void S3Client::CreateUploadAsync(const std::string& key, const Metadata& meta,
                                 std::function<void(Result<std::string>)> done) {
  Target t = MakeTarget(key, "uploads");
  HeaderList extra;
  AddMetadata(meta, &extra);
  Execute(
      RequestKind::kCreateUpload, t.affinity,
      [this, t, extra](size_t e) { return Signed(options_, At(t, e), "POST", "uploads", extra); },
      ExpectField("InitiateMultipartUploadResult", "UploadId", std::move(done)));
}

void S3Client::CopyPartAsync(const CopyPartRequest& request,
                             std::function<void(Result<std::string>)> done) {
  std::string q = PartQuery(request.part_number, request.upload_id);
  Target t = MakeTarget(request.key, q);
  HeaderList extra;
  extra.emplace_back("x-amz-copy-source", CopySource(options_, request.source_key));
  extra.emplace_back("x-amz-copy-source-range",
                     "bytes=" + std::to_string(request.offset) + "-" +
                         std::to_string(request.offset + request.length - 1));
  if (!request.source_if_match.empty())
    extra.emplace_back("x-amz-copy-source-if-match", BareEtag(request.source_if_match));
  Execute(
      RequestKind::kCopyPart, t.affinity,
      [this, t, q, extra](size_t e) { return Signed(options_, At(t, e), "PUT", q, extra); },
      ExpectField("CopyPartResult", "ETag", std::move(done)));
}

void S3Client::CompleteUploadAsync(const std::string& key, const std::string& upload_id,
                                   const std::vector<CompletedPart>& parts,
                                   const WriteCondition& condition,
                                   std::function<void(Result<std::string>)> done) {
  std::string q = "uploadId=" + UriEncode(upload_id, true);
  Target t = MakeTarget(key, q);
  std::string body = CompleteUploadXml(parts);
  HeaderList extra;
  AddCondition(condition, &extra);
  // Ceph RGW 16 answers a successful Complete with an empty <ETag/>: the
  // object then has the ETag S3's rule makes of the parts (tested against
  // radosgw), and that is what the caller gets.
  Execute(
      RequestKind::kCompleteUpload, t.affinity,
      [this, t, q, body, extra](size_t e) {
        return Signed(options_, At(t, e), "POST", q, extra, body);
      },
      [parts, done = std::move(done)](Result<HttpResponse> r) {
        if (!r) return done(tl::unexpected(r.error()));
        auto etag = ParseResultField(r->body, "CompleteMultipartUploadResult", "ETag",
                                     /*allow_empty=*/true);
        if (etag && etag->empty()) {
          std::string computed = MultipartEtag(parts);
          if (computed.empty())
            return done(MakeError(Errc::kProtocol, "CompleteMultipartUploadResult without ETag"));
          return done("\"" + computed + "\"");
        }
        done(std::move(etag));
      });
}

void S3Client::AbortUploadAsync(const std::string& key, const std::string& upload_id,
                                std::function<void(Result<void>)> done) {
  std::string q = "uploadId=" + UriEncode(upload_id, true);
  Target t = MakeTarget(key, q);
  Execute(
      RequestKind::kAbortUpload, t.affinity,
      [this, t, q](size_t e) { return Signed(options_, At(t, e), "DELETE", q, {}); },
      [done = std::move(done)](Result<HttpResponse> r) {
        if (!r && r.error().code != Errc::kNoSuchKey) return done(tl::unexpected(r.error()));
        done({});
      });
}

Result<std::unique_ptr<BodyStream>> S3Client::OpenBodyStream(const std::string& key,
                                                             uint64_t offset, uint64_t length,
                                                             const std::string& if_match,
                                                             BodyStream::Clock::time_point deadline,
                                                             const std::function<bool()>& abandon) {
  Target t = MakeTarget(key, "");
  const size_t e = Pick(RequestKind::kGet, Spread(t.affinity, offset), 0);
  if (endpoints_[e]->scheme != "http")
    return MakeError(Errc::kNotSupported, "streamed GETs need an http:// endpoint");
  HeaderList extra;
  extra.emplace_back("Range",
                     "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
  if (!if_match.empty()) extra.emplace_back("If-Match", if_match);
  requests_[static_cast<size_t>(RequestKind::kGet)].fetch_add(1);
  // No retry here: the caller's other path (the cache) redoes what fails.
  return BodyStream::Open(Signed(options_, At(t, e), "GET", "", extra), offset, length, deadline,
                          abandon);
}

void S3Client::CopyAsync(const std::string& source_key, const std::string& source_if_match,
                         const std::string& key, const Metadata* replace,
                         std::function<void(Result<std::string>)> done) {
  Target t = MakeTarget(key, "");
  HeaderList extra;
  extra.emplace_back("x-amz-copy-source", CopySource(options_, source_key));
  if (!source_if_match.empty())
    extra.emplace_back("x-amz-copy-source-if-match", BareEtag(source_if_match));
  extra.emplace_back("x-amz-metadata-directive", replace ? "REPLACE" : "COPY");
  if (replace) AddMetadata(*replace, &extra);
  Execute(
      RequestKind::kCopy, t.affinity,
      [this, t, extra](size_t e) { return Signed(options_, At(t, e), "PUT", "", extra); },
      ExpectField("CopyObjectResult", "ETag", std::move(done)));
}

void S3Client::DeleteAsync(const std::string& key, std::function<void(Result<void>)> done) {
  Target t = MakeTarget(key, "");
  Execute(
      RequestKind::kDelete, t.affinity,
      [this, t](size_t e) { return Signed(options_, At(t, e), "DELETE", "", {}); },
      [done = std::move(done)](Result<HttpResponse> r) {
        if (!r && r.error().code != Errc::kNoSuchKey) return done(tl::unexpected(r.error()));
        done({});
      });
}

namespace {
// A 501 to an RDMA request. RDMAConnectionUnknown (docs/PROTOCOL.md): the
// server no longer knows the token's connection (it restarted), so the
// caller remakes the connection instead of giving up on RDMA for a while.
RdmaReply Declined(const Error& e) {
  RdmaReply r;
  r.declined = true;
  r.why = e.message;
  r.connection_unknown = e.s3_code == "RDMAConnectionUnknown";
  return r;
}
}  // namespace

Result<std::string> S3Client::RdmaConnect(const std::string& body, size_t endpoint) {
  Target t = MakeTarget("", "rdma-connect");
  t.affinity = endpoint;
  std::promise<Result<std::string>> promise;
  auto future = promise.get_future();
  Execute(
      RequestKind::kRdmaConnect, t.affinity,
      [this, t, body](size_t e) {
        return Signed(options_, At(t, e), "POST", "rdma-connect", {}, body);
      },
      [&promise](Result<HttpResponse> r) {
        if (!r) return promise.set_value(tl::unexpected(r.error()));
        promise.set_value(r->body);
      });
  return future.get();
}

Result<RdmaReply> S3Client::PutRdma(const std::string& key, const std::string& token,
                                    const std::string& crc32c) {
  std::promise<Result<RdmaReply>> promise;
  auto future = promise.get_future();
  PutRequest req;
  req.key = key;
  PutRdmaAsync(req, token, crc32c,
               [&promise](Result<RdmaReply> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void S3Client::PutRdmaAsync(const PutRequest& request, const std::string& token,
                            const std::string& crc32c, std::function<void(Result<RdmaReply>)> done,
                            size_t endpoint) {
  bool part = !request.upload_id.empty();
  std::string q = part ? PartQuery(request.part_number, request.upload_id) : "";
  Target t = MakeTarget(request.key, q);
  t.affinity = endpoint;
  HeaderList extra;
  extra.emplace_back("Content-Length", "0");
  extra.emplace_back("x-amz-rdma-token", token);
  if (!crc32c.empty()) extra.emplace_back("x-amz-checksum-crc32c", crc32c);
  if (!part) AddMetadata(request.meta, &extra);
  if (!part) AddCondition(request.condition, &extra);
  Execute(
      RequestKind::kRdmaPut, t.affinity,
      [this, t, q, extra](size_t e) { return Signed(options_, At(t, e), "PUT", q, extra); },
      [crc32c, done = std::move(done)](Result<HttpResponse> r) {
        if (!r) {
          if (r.error().http_status == 501) return done(Declined(r.error()));
          if (r.error().http_status == 400 && r.error().s3_code == "InvalidRequest")
            return done(Declined(r.error()));  // RustFS: no tokens at all
          // The checksum refused the body the server got: a server that
          // ignored the token and saw an empty one (Ceph RGW with RDMA off;
          // nothing was stored), or an RDMA read that went wrong. Either way
          // HTTP for a while.
          if (r.error().http_status == 400 && r.error().s3_code == "BadDigest")
            return done(Declined(r.error()));
          return done(tl::unexpected(r.error()));
        }
        const std::string* moved = r->Header("x-amz-rdma-bytes-transferred");
        const std::string* etag = r->Header("etag");
        // Neither reply header: some servers answer a successful RDMA PUT
        // with 200 and its ETag alone, while one that ignored the token
        // stored an empty body (a server that checks checksums would have
        // refused it, above). The ETag tells them apart: an empty body's is
        // the MD5 of nothing, and RDMA PUTs are never empty. Declined means
        // the caller sends the bytes over HTTP (replacing that object).
        if (!moved && !r->Header("x-amz-rdma-reply")) {
          constexpr std::string_view kEmptyMd5 = "d41d8cd98f00b204e9800998ecf8427e";
          const std::string* echoed = r->Header("x-amz-checksum-crc32c");
          if (!etag || BareEtag(*etag) == kEmptyMd5 || (echoed && *echoed != crc32c))
            return done(RdmaReply{true, "the server ignored x-amz-rdma-token", 0, ""});
          return done(RdmaReply{false, "", 0, *etag});
        }
        done(RdmaReply{false, "", moved ? strtoull(moved->c_str(), nullptr, 10) : 0,
                       etag ? *etag : ""});
      });
}

void S3Client::GetRdmaAsync(const std::string& key, uint64_t offset, std::span<std::byte> window,
                            const std::string& if_match, const std::string& token,
                            std::function<void(Result<RdmaReply>)> done, size_t endpoint) {
  const uint64_t length = window.size();
  Target t = MakeTarget(key, "");
  t.affinity = endpoint;
  HeaderList extra;
  extra.emplace_back("Range",
                     "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
  if (!if_match.empty()) extra.emplace_back("If-Match", if_match);
  extra.emplace_back("x-amz-rdma-token", token);
  Execute(
      RequestKind::kRdmaGet, t.affinity,
      [this, t, extra, window](size_t e) {
        HttpRequest req = Signed(options_, At(t, e), "GET", "", extra);
        req.sink = {window};  // where an HTTP body goes, from a server that ignored the token
        return req;
      },
      [key, length, if_match, done = std::move(done)](Result<HttpResponse> r) {
        if (!r) {
          if (r.error().http_status == 501) return done(Declined(r.error()));
          // RustFS refuses any request that carries a token: a decline.
          if (r.error().http_status == 400 && r.error().s3_code == "InvalidRequest")
            return done(Declined(r.error()));
          return done(tl::unexpected(r.error()));
        }
        const std::string* reply = r->Header("x-amz-rdma-reply");
        const std::string* etag = r->Header("etag");
        if (!reply) {
          RdmaReply d;
          d.declined = true;
          d.why = "the server ignored x-amz-rdma-token";
          if (r->sink_bytes == length && length > 0) {  // and sent the bytes as the body
            if (!if_match.empty() && etag && BareEtag(*etag) != BareEtag(if_match))
              return done(MakeError(Errc::kPreconditionFailed, "GET " + key + ": ETag changed"));
            d.served_over_http = true;
            d.bytes = length;
            d.etag = etag ? *etag : "";
          }
          return done(d);
        }
        const std::string* moved = r->Header("x-amz-rdma-bytes-transferred");
        uint64_t bytes = moved ? strtoull(moved->c_str(), nullptr, 10) : 0;
        if (bytes != length)
          return done(MakeError(Errc::kProtocol, "RDMA GET " + key + ": " + std::to_string(bytes) +
                                                     " of " + std::to_string(length) +
                                                     " bytes transferred"));
        if (!if_match.empty() && etag && BareEtag(*etag) != BareEtag(if_match))
          return done(MakeError(Errc::kPreconditionFailed, "RDMA GET " + key + ": ETag changed"));
        done(RdmaReply{false, "", bytes, etag ? *etag : ""});
      });
}

}  // namespace s3rdmafs::s3
