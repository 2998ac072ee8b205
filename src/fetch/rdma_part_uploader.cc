#include "s3rdmafs/common/log.h"
#include "s3rdmafs/fetch/rdma_range_fetcher.h"

namespace s3rdmafs::fetch {
namespace {

using Clock = std::chrono::steady_clock;

class RdmaPartUploader final : public PartUploader {
 public:
  RdmaPartUploader(s3::S3Client* client, std::shared_ptr<rdma::TokenSource> conn,
                   PartUploader* http, TransportCounters* counters,
                   std::chrono::milliseconds backoff)
      : client_(client),
        conn_(std::move(conn)),
        http_(http),
        counters_(counters),
        backoff_(backoff) {}

  const char* name() const override { return "rdma"; }

  void Upload(UploadJob job, std::function<void(Result<std::string>)> done) override {
    // Empty bodies have no window to name; tiny ones are cheaper as a body.
    if (job.data.size() < kSmallestRdmaUpload || conn_->retired() ||
        Clock::now().time_since_epoch().count() < declined_until_.load())
      return OverHttp(std::move(job), std::move(done));
    auto token = conn_->TokenFor(job.data.data(), job.data.size());
    if (!token) return OverHttp(std::move(job), std::move(done));
    s3::PutRequest put;
    put.key = job.key;
    put.meta = job.meta;
    put.upload_id = job.upload_id;
    put.part_number = job.part_number;
    auto shared = std::make_shared<UploadJob>(std::move(job));
    client_->PutRdmaAsync(
        put, *token, "",
        [this, shared, done = std::move(done)](Result<s3::S3Client::RdmaGetReply> r) mutable {
          if (r && !r->declined) {
            counters_->bytes_rdma_sent += shared->data.size();
            return done(r->etag);
          }
          if (r) {
            ++counters_->fallbacks_declined;
            declined_until_ = (Clock::now() + backoff_).time_since_epoch().count();
            LOG_WARN("RDMA PUT declined by the server (%s): HTTP for a while", r->why.c_str());
          } else if (r.error().http_status == 0) {
            // No reply: the server may still READ this span. Retire the region
            // before the buffer can be reused; this upload goes over HTTP.
            if (!conn_->retired()) {
              LOG_ERROR("RDMA PUT lost its reply (%s): retiring the RDMA connection",
                        r.error().ToString().c_str());
              conn_->Retire();
              ++counters_->connections_retired;
            }
            ++counters_->fallbacks_failed;
          } else {
            ++counters_->fallbacks_failed;
            LOG_WARN("RDMA PUT failed (%s): retrying over HTTP", r.error().ToString().c_str());
          }
          OverHttp(std::move(*shared), std::move(done));
        });
  }

 private:
  static constexpr size_t kSmallestRdmaUpload = 4096;

  void OverHttp(UploadJob job, std::function<void(Result<std::string>)> done) {
    TransportCounters* counters = counters_;
    size_t n = job.data.size();
    http_->Upload(std::move(job), [counters, n, done = std::move(done)](Result<std::string> r) {
      if (r) counters->bytes_http_sent += n;
      done(std::move(r));
    });
  }

  s3::S3Client* client_;
  std::shared_ptr<rdma::TokenSource> conn_;
  PartUploader* http_;
  TransportCounters* counters_;
  std::chrono::milliseconds backoff_;
  std::atomic<int64_t> declined_until_{0};
};

}  // namespace

std::unique_ptr<PartUploader> MakeRdmaPartUploader(s3::S3Client* client,
                                                   std::shared_ptr<rdma::TokenSource> conn,
                                                   PartUploader* http, TransportCounters* counters,
                                                   std::chrono::milliseconds declined_backoff) {
  return std::make_unique<RdmaPartUploader>(client, std::move(conn), http, counters,
                                            declined_backoff);
}

}  // namespace s3rdmafs::fetch
