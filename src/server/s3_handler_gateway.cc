// Gateway mode (s3rdma-server --upstream): the RDMA data path is served
// here, every other request goes to the upstream S3 as it came, re-signed
// with the gateway's credentials. Stateless: nothing is kept between
// requests, so gateways can be added and killed freely.
//
// Identity: a client signs with a key of this gateway's [[keys]]; whoever it
// is, it acts upstream as the gateway's upstream identity. An unsigned
// request goes on unsigned (the upstream's ACLs decide), unless `anonymous`
// is set, when it too acts as the gateway's identity.
#include <strings.h>

#include <cstring>
#include <optional>

#include "auth.h"
#include "aws_chunked.h"
#include "checksums.h"
#include "rdma_endpoint.h"
#include "s3_handler.h"
#include "s3rdmafs/common/log.h"
#include "upstream.h"
#include "xml_util.h"

namespace s3rdma::server {

namespace s3 = s3rdmafs::s3;
using s3rdmafs::Errc;

namespace {

constexpr size_t kMaxBufferedAnswer = 64u << 20;  // an answer with no length (a listing)

std::optional<uint64_t> ContentLength(const Headers& headers) {
  for (auto& [k, v] : headers)
    if (strcasecmp(k.c_str(), "content-length") == 0 && !v.empty() &&
        v.find_first_not_of("0123456789") == std::string::npos)
      return std::stoull(v);
  return std::nullopt;
}

Headers WithoutLength(const Headers& headers) {
  Headers out;
  for (auto& h : headers)
    if (strcasecmp(h.first.c_str(), "content-length") != 0) out.push_back(h);
  return out;
}

// The request's body as the upstream must get it: its bytes, pulled from the
// client; an aws-chunked body decoded (its chunk signatures checked here, as
// the upstream cannot: they are signed with the client's key). A checksum the
// request names (header or trailer) is checked here too, whatever the
// upstream does with it: the last byte goes up only once the checksum holds,
// so a wrong one cuts the upload short and nothing is stored.
class BodyPump {
 public:
  // `chunked`: the decoder of an aws-chunked body, else null. `length`: the
  // (decoded) body's size, when known.
  BodyPump(Exchange& ex, AwsChunkedDecoder* chunked, std::optional<uint64_t> length,
           std::optional<WantedChecksum> checksum)
      : ex_(ex), chunked_(chunked), length_(length), checksum_(std::move(checksum)) {}

  long Pull(char* into, size_t cap) {
    if (!chunked_ && !checksum_) return ex_.ReadSome(into, cap);  // straight through
    for (;;) {
      uint64_t avail = pending_.size() - taken_;
      if (!ended_ && length_ && given_ + avail >= *length_)
        avail = *length_ > given_ ? *length_ - given_ - 1 : 0;  // the last byte waits
      if (avail > 0) {
        size_t give = static_cast<size_t>(std::min<uint64_t>(cap, avail));
        memcpy(into, pending_.data() + taken_, give);
        taken_ += give;
        given_ += give;
        return static_cast<long>(give);
      }
      if (ended_) return 0;
      pending_.erase(0, taken_);
      taken_ = 0;
      long got = ex_.ReadSome(raw_.data(), raw_.size());
      if (got < 0) return -1;
      if (got == 0) {
        ended_ = true;
        if (auto r = End(); !r) return Fail(r.error());
        continue;
      }
      auto keep = [&](const char* d, size_t n) {
        if (checksum_) checksum_->sum->Update(d, n);
        pending_.append(d, n);
        return true;
      };
      if (!chunked_) {
        keep(raw_.data(), static_cast<size_t>(got));
      } else if (auto fed = chunked_->Feed(raw_.data(), static_cast<size_t>(got), keep); !fed) {
        return Fail(fed.error());
      }
    }
  }

  const std::optional<s3rdmafs::Error>& error() const { return error_; }

 private:
  s3rdmafs::Result<void> End() {
    const uint64_t total = given_ + pending_.size() - taken_;
    if (chunked_) {
      if (auto r = chunked_->Finish(); !r) return r;
      if (checksum_ && chunked_->trailers().count(checksum_->sum->header()))
        checksum_->expected = chunked_->trailers().at(checksum_->sum->header());
    }
    if (length_ && total != *length_)
      return s3rdmafs::MakeS3Error(
          400, "IncompleteBody",
          "the body has " + std::to_string(total) + " bytes, not " + std::to_string(*length_));
    if (checksum_ && !checksum_->expected.empty()) return CheckDigest(*checksum_);
    return {};
  }
  long Fail(s3rdmafs::Error e) {
    error_ = std::move(e);
    return -1;
  }
  Exchange& ex_;
  AwsChunkedDecoder* chunked_;
  std::optional<uint64_t> length_;
  std::optional<WantedChecksum> checksum_;
  std::vector<char> raw_ = std::vector<char>(size_t{256} << 10);
  std::string pending_;
  size_t taken_ = 0;
  uint64_t given_ = 0;
  bool ended_ = false;
  std::optional<s3rdmafs::Error> error_;
};

// The upstream request for a client's request to bucket/key: its query
// without the client's own auth parameters, signed unless the client was
// anonymous.
UpstreamCall CallFor(const Request& req, const AuthResult& auth, std::string method,
                     const std::string& bucket, const std::string& key) {
  UpstreamCall call;
  call.method = std::move(method);
  call.bucket = bucket;
  call.key = key;
  call.raw_query = WithoutAuthParameters(req.raw_query);
  call.sign = !auth.anonymous;
  return call;
}

}  // namespace

void S3Handler::Gateway(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                        const std::string& key) {
  const Request& req = ex.request();
  const bool rdma_token = req.HasHeader("x-amz-rdma-token");
  if (!bucket.empty() && key.empty() && req.method == "POST" &&
      xml_util::ParseQuery(req.raw_query).count("rdma-connect"))
    return RdmaConnect(ex, auth, bucket);
  if (!key.empty() && rdma_token && (req.method == "GET" || req.method == "PUT") &&
      !req.HasHeader("x-amz-copy-source"))
    return RdmaRequest(ex, auth, bucket, key);
  Forward(ex, auth, bucket, key);
}

void S3Handler::SendUpstreamFailure(Exchange& ex, const s3rdmafs::Error& e,
                                    const std::string& resource) {
  LOG_WARN("%s %s: %s", ex.request().method.c_str(), resource.c_str(), e.message.c_str());
  ++stats_->upstream_unanswered;
  // 503: every S3 client retries it, and the next gateway may be up.
  SendError(ex, 503, "ServiceUnavailable", e.message, resource);
}

void S3Handler::Forward(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                        const std::string& key) {
  const Request& req = ex.request();
  const std::string resource = "/" + bucket + (key.empty() ? "" : "/" + key);
  UpstreamCall call = CallFor(req, auth, req.method, bucket, key);
  std::optional<uint64_t> length;
  if (req.HasHeader("content-length")) {
    const std::string v = req.Header("content-length");
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 15)
      return SendError(ex, 400, "InvalidArgument", "bad Content-Length '" + v + "'", resource);
    length = std::stoull(v);
  }
  std::optional<AwsChunkedDecoder> chunked;
  call.payload_hash = auth.payload_hash;
  if (auto form = AwsChunkedDecoder::ForBody(auth, &chunked); !form)
    return SendBackendError(ex, form.error(), resource);
  if (chunked) {
    const std::string decoded = req.Header("x-amz-decoded-content-length");
    if (decoded.empty() || decoded.find_first_not_of("0123456789") != std::string::npos ||
        decoded.size() > 15)
      return SendError(ex, 411, "MissingContentLength",
                       "an aws-chunked body needs x-amz-decoded-content-length", resource);
    length = std::stoull(decoded);
    call.payload_hash = std::string(s3::kUnsignedPayload);
  }
  const bool has_body = length ? *length > 0 : req.HasHeader("transfer-encoding");
  if (call.payload_hash.empty() && has_body) call.payload_hash = std::string(s3::kUnsignedPayload);
  for (auto& h : req.headers) {
    // aws-chunked framed the body between client and gateway; the upstream
    // gets the decoded bytes.
    if (chunked && strcasecmp(h.first.c_str(), "content-encoding") == 0) {
      if (std::string rest = WithoutAwsChunked(h.second); !rest.empty())
        call.headers.emplace_back(h.first, std::move(rest));
      continue;
    }
    if (chunked && strcasecmp(h.first.c_str(), "x-amz-trailer") == 0) continue;
    call.headers.push_back(h);
  }
  auto checksum = ChecksumOf(req);
  if (!checksum) return SendBackendError(ex, checksum.error(), resource);
  if (chunked)
    if (auto t = AddTrailerChecksum(req, &*checksum); !t)
      return SendBackendError(ex, t.error(), resource);
  if (*checksum && (*checksum)->expected.empty() && !req.HasHeader("x-amz-trailer"))
    checksum->reset();  // x-amz-sdk-checksum-algorithm alone: the upstream's to compute
  BodyPump pump(ex, chunked ? &*chunked : nullptr, length, std::move(*checksum));
  if (req.method != "GET" && req.method != "HEAD") {
    // No Content-Length and no chunked body (a bare DELETE): an empty body.
    call.body_length = length || req.HasHeader("transfer-encoding") ? length : 0;
    call.read_body = [&pump, this](char* into, size_t cap) {
      long got = pump.Pull(into, cap);
      if (got > 0) stats_->upstream_up += static_cast<uint64_t>(got);
      return got;
    };
  }

  bool streaming = false, buffering = false;
  int status = 0;
  Headers answer;
  std::string body;
  call.on_head = [&](int s, const Headers& h) {
    status = s;
    if (req.method == "HEAD") {
      ex.SendHeadersOnly(s, WithoutLength(h), ContentLength(h).value_or(0));
      return true;
    }
    if (auto n = ContentLength(h)) {
      ex.BeginBody(s, WithoutLength(h), *n);
      streaming = true;
    } else {
      answer = h;
      buffering = true;
    }
    return true;
  };
  call.on_body = [&](const char* d, size_t n) {
    stats_->upstream_down += n;
    if (streaming) return ex.SendBodyPart(d, n);
    if (body.size() + n > kMaxBufferedAnswer) return false;
    body.append(d, n);
    return true;
  };
  auto sent = upstream_->Send(call);
  if (pump.error()) {  // the client's body was bad: nothing was stored upstream
    if (streaming || status) return ex.Abandon();
    return SendBackendError(ex, *pump.error(), resource);
  }
  if (!sent) {
    if (sent.error().code == Errc::kConnection)
      return SendUpstreamFailure(ex, sent.error(), resource);
    LOG_WARN("%s %s: %s", req.method.c_str(), resource.c_str(), sent.error().message.c_str());
    if (buffering) return SendUpstreamFailure(ex, sent.error(), resource);
    ++stats_->upstream_broken;
    return ex.Abandon();  // a short body: the client sees the transfer broke
  }
  if (buffering) ex.Send(status, WithoutLength(answer), body);
}

// RDMA GET through the gateway: the upstream's body is streamed into a
// staging slot and RDMA-written into the token's window a slot at a time.
// An upstream error answer goes back over HTTP as it came.
void S3Handler::GatewayRdmaGet(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                               const std::string& key, const s3rdmafs::rdma::RcToken& token) {
  const Request& req = ex.request();
  const std::string resource = "/" + bucket + "/" + key;
  auto stream = rdma_->OpenStream(auth.access_key, token);
  if (!stream) return SendRdmaFailure(ex, stream.error(), resource);
  UpstreamCall call = CallFor(req, auth, "GET", bucket, key);
  call.headers = req.headers;
  int status = 0;
  Headers answer;
  std::string error_body;
  std::optional<s3rdmafs::Error> rdma_error;
  call.on_head = [&](int s, const Headers& h) {
    status = s;
    answer = WithoutLength(h);
    if (s / 100 == 2 && ContentLength(h).value_or(0) > (*stream)->window()) {
      rdma_error = s3rdmafs::MakeError(Errc::kInvalidArgument,
                                       "the token's window is smaller than the range")
                       .value();
      return false;
    }
    return true;
  };
  call.on_body = [&](const char* d, size_t n) {
    if (status / 100 != 2) {
      if (error_body.size() + n > kMaxBufferedAnswer) return false;
      error_body.append(d, n);
      return true;
    }
    stats_->upstream_down += n;
    if (auto r = (*stream)->Write(d, n); !r) {
      rdma_error = r.error();
      return false;
    }
    return true;
  };
  auto sent = upstream_->Send(call);
  // The reply is the fence: WRITEs already posted finish before any answer.
  if (rdma_error || !sent || status / 100 != 2) (*stream)->Drain();
  if (rdma_error) return SendRdmaFailure(ex, *rdma_error, resource);
  if (!sent) return SendUpstreamFailure(ex, sent.error(), resource);
  if (status / 100 != 2) return ex.Send(status, answer, error_body);
  auto moved = (*stream)->Flush();
  if (!moved) return SendRdmaFailure(ex, moved.error(), resource);
  // Every RDMA WRITE of this request has completed: this reply is the fence.
  answer.emplace_back("x-amz-rdma-reply", std::to_string(status));
  answer.emplace_back("x-amz-rdma-bytes-transferred", std::to_string(*moved));
  stats_->rdma_written += *moved;
  LOG_DEBUG("RDMA GET %s: %llu bytes by RDMA WRITE, from the upstream", resource.c_str(),
            static_cast<unsigned long long>(*moved));
  ex.Send(status, answer, "");
}

// RDMA PUT (or UploadPart) through the gateway: the token's window is
// RDMA-read a slot at a time and streamed up as the request's body. Its
// checksum is checked before the last byte goes up, so a mis-read aborts
// the upload and nothing is stored.
void S3Handler::GatewayRdmaPut(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                               const std::string& key, const s3rdmafs::rdma::RcToken& token) {
  const Request& req = ex.request();
  const std::string resource = "/" + bucket + "/" + key;
  std::string length = req.Header("content-length");
  if (!length.empty() && length != "0")
    return SendError(ex, 400, "InvalidRequest", "an RDMA PUT carries no body (Content-Length: 0)",
                     resource);
  auto checksum = ChecksumOf(req);
  if (!checksum) return SendBackendError(ex, checksum.error(), resource);
  auto stream = rdma_->OpenStream(auth.access_key, token);
  if (!stream) return SendRdmaFailure(ex, stream.error(), resource);
  UpstreamCall call = CallFor(req, auth, "PUT", bucket, key);
  call.headers = req.headers;
  call.payload_hash = std::string(s3::kUnsignedPayload);
  call.body_length = token.size;
  std::optional<s3rdmafs::Error> refused;  // RDMA failed, or the bytes are not what was sent
  uint64_t moved = 0;
  call.read_body = [&](char* into, size_t cap) -> long {
    auto got = (*stream)->Read(into, cap);
    if (!got) {
      refused = got.error();
      return -1;
    }
    if (*checksum) (*checksum)->sum->Update(into, *got);
    moved += *got;
    stats_->upstream_up += *got;
    if (moved == token.size && *checksum && !(*checksum)->expected.empty())
      if (auto r = CheckDigest(**checksum); !r) {
        refused = r.error();
        return -1;  // the upload is cut short: the upstream stores nothing
      }
    return static_cast<long>(*got);
  };
  int status = 0;
  Headers answer;
  std::string body;
  call.on_head = [&](int s, const Headers& h) {
    status = s;
    answer = WithoutLength(h);
    return true;
  };
  call.on_body = [&](const char* d, size_t n) {
    if (body.size() + n > kMaxBufferedAnswer) return false;
    body.append(d, n);
    return true;
  };
  auto sent = upstream_->Send(call);
  (*stream)->Drain();  // a READ ahead the upstream did not take (it stopped early)
  if (refused) {
    if (refused->s3_code == "BadDigest") return SendBackendError(ex, *refused, resource);
    return SendRdmaFailure(ex, *refused, resource);
  }
  if (!sent) return SendUpstreamFailure(ex, sent.error(), resource);
  if (status / 100 != 2) return ex.Send(status, answer, body);
  answer.emplace_back("x-amz-rdma-reply", std::to_string(status));
  answer.emplace_back("x-amz-rdma-bytes-transferred", std::to_string(moved));
  stats_->rdma_read += moved;
  const bool checked = *checksum && !(*checksum)->expected.empty();
  LOG_DEBUG("RDMA PUT %s: %llu bytes by RDMA READ, to the upstream%s%s", resource.c_str(),
            static_cast<unsigned long long>(moved),
            checked ? ", checked against " : ", no checksum sent",
            checked ? (*checksum)->sum->header().c_str() : "");
  ex.Send(status, answer, "");
}

}  // namespace s3rdma::server
