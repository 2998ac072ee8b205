#include "upstream.h"

#include <curl/curl.h>
#include <strings.h>

#include <array>
#include <cstdlib>
#include <ctime>

#include "s3rdmafs/common/log.h"
#include "s3rdmafs/s3/credentials.h"

namespace s3rdma::server {

namespace s3 = s3rdmafs::s3;
using s3rdmafs::Errc;
using s3rdmafs::MakeError;

namespace {

// One libcurl handle per thread: the server serves each connection on its
// own thread, and the handle keeps that thread's upstream connection alive.
struct ThreadHandle {
  CURL* curl = curl_easy_init();
  ~ThreadHandle() { curl_easy_cleanup(curl); }
};

struct Transfer {
  UpstreamCall* call;
  int status = 0;
  Headers headers;
  bool head_sent = false;
  bool aborted = false;  // a callback said stop
};

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsHopByHop(std::string_view lower) {
  return lower == "connection" || lower == "keep-alive" || lower == "transfer-encoding" ||
         lower == "te" || lower == "trailer" || lower == "upgrade" || lower.rfind("proxy-", 0) == 0;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.rfind("HTTP/", 0) == 0) {  // a status line: a new answer (after a 1xx, the real one)
    size_t sp = line.find(' ');
    t->status = sp == std::string_view::npos ? 0 : atoi(std::string(line.substr(sp + 1)).c_str());
    t->headers.clear();
    return size * n;
  }
  if (line.empty()) {
    if (t->status >= 200 && !t->head_sent) {
      t->head_sent = true;
      if (t->call->on_head && !t->call->on_head(t->status, t->headers)) {
        t->aborted = true;
        return 0;
      }
    }
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (!IsHopByHop(Lower(name))) t->headers.emplace_back(std::move(name), std::string(value));
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->call->on_body && !t->call->on_body(data, size * n)) {
    t->aborted = true;
    return 0;
  }
  return size * n;
}

size_t OnRead(char* into, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->call->read_body) return 0;
  long got = t->call->read_body(into, size * n);
  if (got < 0) {
    t->aborted = true;
    return CURL_READFUNC_ABORT;
  }
  return static_cast<size_t>(got);
}

}  // namespace

bool IsGatewayOwnedHeader(std::string_view lower) {
  return IsHopByHop(lower) || lower == "host" || lower == "authorization" ||
         lower == "x-amz-date" || lower == "x-amz-content-sha256" ||
         lower == "x-amz-security-token" || lower == "expect" || lower == "content-length" ||
         lower == "x-amz-rdma-token" || lower == "x-amz-decoded-content-length";
}

std::string WithoutAuthParameters(const std::string& raw_query) {
  static constexpr std::array<std::string_view, 10> kAuth = {
      "X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",           "X-Amz-Expires",
      "X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Security-Token", "AWSAccessKeyId",
      "Signature",           "Expires"};
  std::string out;
  size_t at = 0;
  while (at <= raw_query.size() && !raw_query.empty()) {
    size_t amp = raw_query.find('&', at);
    std::string_view part(raw_query.data() + at,
                          (amp == std::string::npos ? raw_query.size() : amp) - at);
    std::string_view name = part.substr(0, part.find('='));
    bool auth = false;
    for (auto a : kAuth) auth = auth || name == a;
    if (!auth && !part.empty()) {
      if (!out.empty()) out += '&';
      out += part;
    }
    if (amp == std::string::npos) break;
    at = amp + 1;
  }
  return out;
}

s3rdmafs::Result<std::unique_ptr<Upstream>> Upstream::Create(const UpstreamConfig& config) {
  const std::string& e = config.endpoint;
  size_t scheme_end = e.find("://");
  if (scheme_end == std::string::npos ||
      (e.compare(0, scheme_end, "http") != 0 && e.compare(0, scheme_end, "https") != 0))
    return MakeError(Errc::kConfig,
                     "upstream.endpoint must be http(s)://host[:port], got '" + e + "'");
  std::string host = e.substr(scheme_end + 3);
  while (!host.empty() && host.back() == '/') host.pop_back();
  if (host.empty() || host.find('/') != std::string::npos)
    return MakeError(Errc::kConfig,
                     "upstream.endpoint must be http(s)://host[:port] with no "
                     "path (buckets map one to one), got '" +
                         e + "'");
  curl_global_init(CURL_GLOBAL_DEFAULT);  // before any connection thread makes a handle
  std::unique_ptr<Upstream> u(new Upstream(config));
  u->host_ = host;
  u->config_.endpoint = e.substr(0, scheme_end + 3) + host;
  s3::CredentialSources sources;
  sources.access_key = config.access_key;
  sources.secret_key = config.secret_key;
  sources.session_token = config.session_token;
  sources.profile = config.profile;
  sources.anonymous = config.anonymous;
  sources.getenv = [](const char* name) -> const char* { return std::getenv(name); };
  auto creds = s3::ResolveCredentials(sources);
  if (!creds) return MakeError(Errc::kConfig, "upstream: " + creds.error().message);
  u->credentials_ = creds->credentials;
  LOG_INFO("gateway: upstream %s, region %s, credentials from %s", u->config_.endpoint.c_str(),
           config.region.c_str(), creds->source.c_str());
  return u;
}

s3rdmafs::Result<void> Upstream::Send(UpstreamCall& call) {
  static thread_local ThreadHandle handle;
  CURL* c = handle.curl;
  if (!c) return MakeError(Errc::kConnection, "libcurl could not make a handle");
  curl_easy_reset(c);  // keeps the connection cache

  std::string uri = "/";
  if (!call.bucket.empty()) {
    uri += s3::UriEncode(call.bucket, true);
    if (!call.key.empty()) uri += "/" + s3::UriEncode(call.key, false);
  }
  std::string url = config_.endpoint + uri + (call.raw_query.empty() ? "" : "?" + call.raw_query);
  s3::HeaderList headers;
  headers.emplace_back("host", host_);
  for (auto& [k, v] : call.headers)
    if (!IsGatewayOwnedHeader(Lower(k))) headers.emplace_back(Lower(k), v);
  if (call.sign && !credentials_.anonymous())
    s3::SignRequest(credentials_, config_.region, call.method, uri, call.raw_query,
                    call.payload_hash.empty() ? s3::kEmptySha256 : call.payload_hash,
                    std::time(nullptr), &headers);
  curl_slist* list = nullptr;
  for (auto& [k, v] : headers)
    if (k != "host") list = curl_slist_append(list, (k + ": " + v).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  list = curl_slist_append(list, "Accept:");
  struct ListFree {
    curl_slist* l;
    ~ListFree() { curl_slist_free_all(l); }
  } list_free{list};

  Transfer t{&call};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout_ms));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(config_.stall_timeout_s));
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 1L << 19);
  if (!config_.ca_bundle.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, config_.ca_bundle.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (call.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (call.method != "GET") {
    // Every other method goes with a Content-Length (0 without a body): S3
    // refuses a POST or PUT without one.
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    // No length: the client sent its body chunked, and so does the gateway.
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                     call.body_length ? static_cast<curl_off_t>(*call.body_length) : -1);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 19);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK && t.head_sent) return {};
  std::string why = t.aborted ? "aborted" : curl_easy_strerror(rc);
  if (!t.head_sent)
    return MakeError(Errc::kConnection, "upstream " + config_.endpoint + ": " + why);
  return MakeError(Errc::kIo, "upstream " + config_.endpoint + " transfer broke: " + why);
}

}  // namespace s3rdma::server
