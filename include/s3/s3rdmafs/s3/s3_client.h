// S3Client: ObjectStore over HTTP(S) with SigV4, path-style or virtual-hosted
// addressing, and retries with jittered exponential back-off on 5xx, 503
// SlowDown and connection errors - never on other 4xx (they will not heal).
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "s3rdmafs/s3/curl_engine.h"
#include "s3rdmafs/s3/object_store.h"
#include "s3rdmafs/s3/rdma_store.h"

namespace s3rdmafs::s3 {

struct S3ClientOptions {
  // http(s)://host[:port], or several (common/endpoint_list.h): requests
  // spread over them by object and range, and one that fails to answer
  // rests while the others take its requests.
  std::string endpoint;
  std::string region = "us-east-1";
  std::string bucket;
  bool virtual_hosted = false;
  Credentials credentials;
  uint32_t max_retries = 4;
  uint64_t retry_base_delay_ms = 100;
  uint64_t retry_max_delay_ms = 5000;
};

// Maps an HTTP error answer (status + XML body) to our error codes.
Error ErrorFromResponse(const HttpResponse& response, const std::string& what);
bool IsRetryable(const Error& error);

class S3Client final : public ObjectStore, public RdmaStore {
 public:
  static Result<std::unique_ptr<S3Client>> Create(S3ClientOptions options, CurlEngine* engine);

  void HeadAsync(const std::string& key, std::function<void(Result<ObjectInfo>)> done) override;
  void HeadWithBodyAsync(const std::string& key, std::span<std::byte> into,
                         std::function<void(Result<HeadWithBody>)> done) override;
  void ListAsync(const ListRequest& request, std::function<void(Result<ListPage>)> done) override;
  void GetAsync(GetRequest request, std::function<void(Result<GetResult>)> done) override;
  void PutAsync(PutRequest request, std::function<void(Result<std::string>)> done) override;
  void CreateUploadAsync(const std::string& key, const Metadata& meta,
                         std::function<void(Result<std::string>)> done) override;
  void CopyPartAsync(const CopyPartRequest& request,
                     std::function<void(Result<std::string>)> done) override;
  void CompleteUploadAsync(const std::string& key, const std::string& upload_id,
                           const std::vector<CompletedPart>& parts, const WriteCondition& condition,
                           std::function<void(Result<std::string>)> done) override;
  void AbortUploadAsync(const std::string& key, const std::string& upload_id,
                        std::function<void(Result<void>)> done) override;
  void CopyAsync(const std::string& source_key, const std::string& source_if_match,
                 const std::string& key, const Metadata* replace,
                 std::function<void(Result<std::string>)> done) override;
  void DeleteAsync(const std::string& key, std::function<void(Result<void>)> done) override;
  // Over http:// endpoints only (TLS bodies are decrypted in user space).
  Result<std::unique_ptr<BodyStream>> OpenBodyStream(const std::string& key, uint64_t offset,
                                                     uint64_t length, const std::string& if_match,
                                                     BodyStream::Clock::time_point deadline,
                                                     const std::function<bool()>& abandon) override;

  // The URL a request for `key` (with `raw_query`) goes to at the first
  // endpoint, and its canonical URI; `affinity` picks the endpoint.
  struct Target {
    std::string url;
    std::string host;
    std::string canonical_uri;
    std::string query;  // "?..." or ""
    uint64_t affinity = 0;
  };
  Target MakeTarget(std::string_view key, std::string_view raw_query) const;
  Target At(const Target& t, size_t endpoint) const;
  static constexpr int64_t kEndpointRestMs = 2000;
  static uint64_t Spread(uint64_t affinity, uint64_t offset);
  size_t endpoints() const { return endpoints_.size(); }
  // The endpoint a request for these bytes goes to now (by affinity, skipping
  // resting ones): where the RDMA data path sends it too.
  size_t EndpointFor(std::string_view key, uint64_t offset) const override;
  // Requests moved to another endpoint because theirs did not answer.
  uint64_t failovers() const { return failovers_.load(); }

  uint64_t retries() const { return retries_.load(); }
  // Requests sent (retries included), by S3 operation: what a server bills
  // and spends CPU on. Each method names its own; kRequestKinds are the
  // metrics labels, in enum order.
  enum class RequestKind : size_t {
    kHead,
    kGet,
    kList,
    kPut,
    kUploadPart,
    kCopy,
    kCopyPart,
    kCreateUpload,
    kCompleteUpload,
    kAbortUpload,
    kDelete,
    kRdmaGet,
    kRdmaPut,
    kRdmaConnect
  };
  static constexpr std::array<const char*, 14> kRequestKinds = {
      "head",         "get",           "list",
      "put",          "upload_part",   "copy",
      "copy_part",    "create_upload", "complete_upload",
      "abort_upload", "delete",        "rdma_get",
      "rdma_put",     "rdma_connect"};
  uint64_t requests(size_t kind) const { return requests_[kind].load(); }
  // Object bytes go in the data lane; everything else in the metadata lane.
  static Lane LaneOf(RequestKind kind);
  // Requests that failed for good (after retries), by error code.
  uint64_t failures(Errc code) const { return failures_[static_cast<size_t>(code)].load(); }

  // RDMA-S3 (docs/PROTOCOL.md). The handshake that binds an RC connection:
  // POST /bucket?rdma-connect with `body`, signed; returns the reply body.
  // The RDMA calls go to one endpoint, by index (each gateway holds its own
  // connections and tokens): the one RdmaConnect bound the connection at.
  Result<std::string> RdmaConnect(const std::string& body, size_t endpoint = 0);
  // RdmaStore: a ranged GET, or a PUT / UploadPart, carrying
  // x-amz-rdma-token (signed). 501, 400 InvalidRequest (RustFS), 400
  // BadDigest to a PUT (a server that ignored the token and checked the
  // empty body) and a 200 without x-amz-rdma-reply are declines.
  void GetRdmaAsync(const std::string& key, uint64_t offset, std::span<std::byte> window,
                    const std::string& if_match, const std::string& token,
                    std::function<void(Result<RdmaReply>)> done, size_t endpoint = 0) override;
  void PutRdmaAsync(const PutRequest& request, const std::string& token, const std::string& crc32c,
                    std::function<void(Result<RdmaReply>)> done, size_t endpoint = 0) override;
  // Blocking PutRdmaAsync of a whole object (tools, tests).
  Result<RdmaReply> PutRdma(const std::string& key, const std::string& token,
                            const std::string& crc32c);

 private:
  struct Endpoint {
    std::string scheme, host_port;
    std::atomic<int64_t> down_until_ms{0};  // failed to answer: others first until then
  };
  S3ClientOptions options_;
  CurlEngine* engine_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> failovers_{0};
  std::array<std::atomic<uint64_t>, kRequestKinds.size()> requests_{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Errc::kProtocol) + 1> failures_{};

  S3Client(S3ClientOptions options, CurlEngine* engine)
      : options_(std::move(options)), engine_(engine) {}
  // The endpoint an attempt goes to: by affinity, skipping resting ones.
  size_t Pick(RequestKind kind, uint64_t affinity, uint32_t attempt) const;
  // Signs (fresh date each attempt) for the endpoint it picks and sends;
  // retries per policy, on another endpoint when this one did not answer.
  void Execute(RequestKind kind, uint64_t affinity, std::function<HttpRequest(size_t)> build,
               std::function<void(Result<HttpResponse>)> done, uint32_t attempt = 0);
};

}  // namespace s3rdmafs::s3
