#include "s3rdmafs/s3/curl_engine.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "plain_http.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::s3 {

const std::string* HttpResponse::Header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

struct CurlEngine::Transfer {
  HttpRequest request;
  HttpResponse response;
  Callback done;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  size_t span_index = 0;
  size_t span_offset = 0;
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();
  size_t upload_index = 0;  // read position in request.upload
  size_t upload_offset = 0;
  bool overflow = false;
  long body_status = -1;  // status of the response whose body is arriving
  char error[CURL_ERROR_SIZE] = {};
};

namespace {

// Bodies we keep in memory (XML listings, error documents) are small; anything
// bigger that was not asked for in a sink is a protocol error.
constexpr size_t kMaxInMemoryBody = 64u << 20;

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* resp = static_cast<HttpResponse*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new status line (e.g. after 100 Continue)
    resp->headers.clear();
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  resp->headers.emplace_back(std::move(name), std::string(value));
  return size * n;
}

}  // namespace

static size_t OnUpload(char* out, size_t size, size_t n, void* user) {
  auto* t = static_cast<CurlEngine::Transfer*>(user);
  size_t room = size * n, wrote = 0;
  if (const FileRegion& f = t->request.upload_file; !f.empty()) {
    const size_t take = std::min<uint64_t>(room, f.length - t->upload_offset);
    ssize_t got = 0;
    while (static_cast<size_t>(got) < take) {
      ssize_t r =
          pread(f.fd, out + got, take - got, static_cast<off_t>(f.offset + t->upload_offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return CURL_READFUNC_ABORT;
      if (r == 0) break;
      got += r;
    }
    memset(out + got, 0, take - got);  // truncated under us: this part is resent anyway
    t->upload_offset += take;
    return take;
  }
  auto& spans = t->request.upload;
  while (room > 0 && t->upload_index < spans.size()) {
    auto s = spans[t->upload_index];
    size_t take = std::min(room, s.size() - t->upload_offset);
    memcpy(out + wrote, s.data() + t->upload_offset, take);
    wrote += take;
    room -= take;
    t->upload_offset += take;
    if (t->upload_offset == s.size()) {
      ++t->upload_index;
      t->upload_offset = 0;
    }
  }
  return wrote;
}

// curl rewinds an upload when it must resend it (a reused connection that the
// server had closed); only a rewind to the start is ever asked for.
static int OnUploadSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<CurlEngine::Transfer*>(user);
  if (offset != 0 || origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  t->upload_index = 0;
  t->upload_offset = 0;
  return CURL_SEEKFUNC_OK;
}

static size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<CurlEngine::Transfer*>(user);
  size_t len = size * n;
  if (t->body_status < 0) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->body_status);
  const long status = t->body_status;
  if (status >= 200 && status < 300 && !t->request.sink.empty()) {
    size_t done = 0;
    while (done < len) {
      if (t->span_index >= t->request.sink.size()) {
        t->overflow = true;
        return 0;  // the server sent more than the range we asked for: abort
      }
      auto& span = t->request.sink[t->span_index];
      size_t room = span.size() - t->span_offset;
      size_t take = std::min(room, len - done);
      memcpy(span.data() + t->span_offset, data + done, take);
      done += take;
      t->span_offset += take;
      if (t->span_offset == span.size()) {
        ++t->span_index;
        t->span_offset = 0;
      }
    }
    t->response.sink_bytes += len;
    return len;
  }
  if (t->response.body.size() + len > kMaxInMemoryBody) {
    t->overflow = true;
    return 0;
  }
  t->response.body.append(data, len);
  return len;
}

CurlEngine::CurlEngine(Options options) : options_(std::move(options)) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURLM* multi = curl_multi_init();
  const long total = static_cast<long>(options_.max_in_flight) +
                     static_cast<long>(options_.max_metadata_in_flight);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, total);
  multi_ = multi;
  if (options_.direct_receive) {
    PlainHttp::Options po;
    po.connect_timeout = std::chrono::milliseconds(options_.connect_timeout_ms);
    po.stall_timeout = std::chrono::milliseconds(options_.low_speed_timeout_ms);
    plain_ = std::make_unique<PlainHttp>(po);
  }
  thread_ = std::thread([this] { Loop(); });
}

CurlEngine::~CurlEngine() {
  Stop();
  for (void* h : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(h));
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void CurlEngine::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  std::lock_guard once(stop_mu_);
  if (thread_.joinable()) thread_.join();
}

void CurlEngine::Submit(HttpRequest request, Callback done) {
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  Callback refused;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      refused = std::move(t->done);
    } else {
      queue_[static_cast<size_t>(t->request.lane)].push_back(std::move(t));
      ++stats_.queued;
    }
  }
  if (refused) {  // called back outside the lock (a callback may submit again)
    refused(MakeError(Errc::kCancelled, "HTTP engine is shutting down"));
    return;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void CurlEngine::After(std::chrono::milliseconds delay, std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    timers_.push_back({std::chrono::steady_clock::now() + delay, std::move(fn)});
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

CurlEngine::Stats CurlEngine::GetStats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void CurlEngine::StartQueued() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  for (;;) {
    std::unique_ptr<Transfer> t;
    {
      std::lock_guard lock(mu_);
      // Metadata first: it is small and someone is usually waiting on it.
      const uint32_t limit[2] = {options_.max_in_flight, options_.max_metadata_in_flight};
      std::deque<std::unique_ptr<Transfer>>* from = nullptr;
      for (size_t lane : {size_t{1}, size_t{0}})
        if (!queue_[lane].empty() && running_by_lane_[lane] < limit[lane]) {
          from = &queue_[lane];
          break;
        }
      if (!from) return;
      t = std::move(from->front());
      from->pop_front();
      ++running_by_lane_[static_cast<size_t>(t->request.lane)];
      --stats_.queued;
      ++stats_.in_flight;
      ++stats_.requests;
    }
    if (plain_ && plain_->Accepts(t->request)) {
      Transfer* raw = t.get();
      running_.push_back(std::move(t));
      {
        std::lock_guard lock(mu_);
        ++stats_.direct_receives;
      }
      plain_->Start(&raw->request, &raw->response,
                    [this, raw](Result<void> r) { FinishPlain(raw, std::move(r)); });
      continue;
    }
    CURL* easy;
    if (!idle_handles_.empty()) {
      easy = static_cast<CURL*>(idle_handles_.back());
      idle_handles_.pop_back();
      curl_easy_reset(easy);
    } else {
      easy = curl_easy_init();
    }
    t->easy = easy;
    for (auto& [k, v] : t->request.headers)
      t->header_list = curl_slist_append(t->header_list, (k + ": " + v).c_str());
    // curl adds these by itself otherwise; S3 needs neither.
    t->header_list = curl_slist_append(t->header_list, "Expect:");
    t->header_list = curl_slist_append(t->header_list, "Accept:");
    curl_easy_setopt(easy, CURLOPT_URL, t->request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->header_list);
    if (t->request.method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (t->request.method != "GET") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, t->request.method.c_str());
    }
    if (t->request.method == "PUT") {
      if (!t->request.body.empty())
        t->request.upload.emplace_back(reinterpret_cast<const std::byte*>(t->request.body.data()),
                                       t->request.body.size());
      curl_off_t total = 0;
      for (auto& s : t->request.upload) total += static_cast<curl_off_t>(s.size());
      if (!t->request.upload_file.empty())
        total = static_cast<curl_off_t>(t->request.upload_file.length);
      curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, total);
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, OnUpload);
      curl_easy_setopt(easy, CURLOPT_READDATA, t.get());
      curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, OnUploadSeek);
      curl_easy_setopt(easy, CURLOPT_SEEKDATA, t.get());
    } else if (!t->request.body.empty()) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(t->request.body.size()));
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->request.body.data());
    }
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t->response);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout_ms));
    // A stalled transfer (server hung) is aborted and retried instead of hanging a reader.
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(
        easy, CURLOPT_LOW_SPEED_TIME,
        static_cast<long>(std::max<uint64_t>(1, options_.low_speed_timeout_ms / 1000)));
    if (!options_.ca_bundle.empty())
      curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_bundle.c_str());
    curl_multi_add_handle(multi, easy);
    running_.push_back(std::move(t));
  }
}

std::unique_ptr<CurlEngine::Transfer> CurlEngine::Retire(Transfer* t) {
  auto it = std::find_if(running_.begin(), running_.end(), [t](auto& p) { return p.get() == t; });
  std::unique_ptr<Transfer> owned = std::move(*it);
  running_.erase(it);
  --running_by_lane_[static_cast<size_t>(owned->request.lane)];
  {
    std::lock_guard lock(mu_);
    --stats_.in_flight;
    if (plain_) stats_.direct_connections = plain_->connections_made();
    for (size_t m = 0; m < kMethods.size(); ++m) {
      if (t->request.method != kMethods[m]) continue;
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t->submitted).count();
      Latency& l = stats_.latency[m];
      for (size_t b = 0; b < kLatencyBounds.size(); ++b)
        if (secs <= kLatencyBounds[b]) ++l.buckets[b];
      ++l.count;
      l.sum_seconds += secs;
    }
    stats_.bytes_received += t->response.sink_bytes + t->response.body.size();
    for (auto& s : t->request.upload) stats_.bytes_sent += s.size();
    if (!t->request.upload_file.empty()) stats_.bytes_sent += t->request.upload_file.length;
  }
  return owned;
}

void CurlEngine::FinishPlain(Transfer* t, Result<void> result) {
  std::unique_ptr<Transfer> owned = Retire(t);
  if (!result) {
    owned->done(tl::unexpected(result.error()));
    return;
  }
  owned->done(std::move(owned->response));
}

void CurlEngine::Finish(Transfer* t, int code) {
  CURLM* multi = static_cast<CURLM*>(multi_);
  curl_multi_remove_handle(multi, t->easy);
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (plain_ && code == CURLE_OK) {  // where a name led: later GETs there may skip curl
    char* ip = nullptr;
    long port = 0;
    curl_easy_getinfo(t->easy, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(t->easy, CURLINFO_PRIMARY_PORT, &port);
    if (ip) plain_->Learn(t->request.url, ip, port);
  }
  idle_handles_.push_back(t->easy);
  curl_slist_free_all(t->header_list);
  std::unique_ptr<Transfer> owned = Retire(t);
  if (code != CURLE_OK) {
    std::string what = t->error[0] ? t->error : curl_easy_strerror(static_cast<CURLcode>(code));
    Errc errc = Errc::kConnection;
    if (t->overflow) {
      errc = Errc::kProtocol;
      what = "server sent more bytes than requested";
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      errc = Errc::kTimedOut;
    } else if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
               code == CURLE_SSL_CONNECT_ERROR) {
      // Not retried: a certificate does not become valid by waiting.
      errc = Errc::kProtocol;
      what +=
          " (TLS: check the server certificate, or point s3.ca_bundle at the CA that signed it)";
    }
    owned->done(MakeError(errc, t->request.method + " " + t->request.url + ": " + what));
    return;
  }
  t->response.status = static_cast<int>(status);
  owned->done(std::move(t->response));
}

void CurlEngine::Loop() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  for (;;) {
    std::vector<std::function<void()>> due;
    int timeout_ms = 1000;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      auto now = std::chrono::steady_clock::now();
      for (size_t i = 0; i < timers_.size();) {
        if (timers_[i].when <= now) {
          due.push_back(std::move(timers_[i].fn));
          timers_[i] = std::move(timers_.back());
          timers_.pop_back();
        } else {
          auto ms =
              std::chrono::duration_cast<std::chrono::milliseconds>(timers_[i].when - now).count();
          timeout_ms = std::min<int>(timeout_ms, static_cast<int>(ms) + 1);
          ++i;
        }
      }
    }
    for (auto& fn : due) fn();
    StartQueued();
    int still_running = 0;
    curl_multi_perform(multi, &still_running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      Finish(t, msg->data.result);
    }
    StartQueued();
    // The direct path's sockets wait in the same poll; curl reports what
    // each did in revents, and the direct path moves those.
    std::vector<pollfd> fds;
    std::vector<curl_waitfd> extra;
    if (plain_ && plain_->active() > 0) {
      plain_->Interest(&fds, &timeout_ms);
      extra.reserve(fds.size());
      for (const pollfd& p : fds) extra.push_back({p.fd, p.events, 0});
    }
    curl_multi_poll(multi, extra.data(), static_cast<unsigned>(extra.size()), timeout_ms, nullptr);
    for (size_t i = 0; i < fds.size(); ++i) fds[i].revents = extra[i].revents;
    if (plain_) plain_->Advance(fds);
  }
  // Shutdown: everything pending or running completes as cancelled.
  std::deque<std::unique_ptr<Transfer>> queued;
  {
    std::lock_guard lock(mu_);
    for (auto& lane : queue_) {
      for (auto& t : lane) queued.push_back(std::move(t));
      lane.clear();
    }
  }
  if (plain_) plain_->CancelAll(Error(Errc::kCancelled, "HTTP engine is shutting down"));
  for (auto& t : running_) {
    curl_multi_remove_handle(multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->header_list);
    t->done(MakeError(Errc::kCancelled, "HTTP engine is shutting down"));
  }
  running_.clear();
  for (auto& t : queued) t->done(MakeError(Errc::kCancelled, "HTTP engine is shutting down"));
  // Retries waiting out their back-off: run them now; their resubmission is
  // refused, so every caller hears back (cancelled) before the engine dies.
  std::vector<Timer> waiting;
  {
    std::lock_guard lock(mu_);
    waiting.swap(timers_);
  }
  for (auto& timer : waiting) timer.fn();
}

}  // namespace s3rdmafs::s3
