#include "rdma_path.h"
#include "s3rdmafs/fetch/rdma_range_fetcher.h"

namespace s3rdmafs::fetch {
namespace {

class RdmaPartUploader final : public PartUploader {
 public:
  RdmaPartUploader(s3::S3Client* client, std::shared_ptr<rdma::TokenSource> conn,
                   PartUploader* http, TransportCounters* counters,
                   std::chrono::milliseconds backoff)
      : client_(client), path_(std::move(conn), counters, backoff), http_(http) {}

  const char* name() const override { return "rdma"; }
  bool needs_registered_memory() const override { return true; }

  void Upload(UploadJob job, std::function<void(Result<std::string>)> done) override {
    // Empty bodies have no window to name; tiny ones are cheaper as a body.
    if (job.data.size() < kSmallestRdmaUpload || !path_.Usable())
      return OverHttp(std::move(job), std::move(done));
    auto token = path_.TokenFor(job.data.data(), job.data.size());
    if (!token) return OverHttp(std::move(job), std::move(done));
    s3::PutRequest put;
    put.key = job.key;
    put.meta = job.meta;
    put.condition = job.condition;
    put.upload_id = job.upload_id;
    put.part_number = job.part_number;
    auto shared = std::make_shared<UploadJob>(std::move(job));
    client_->PutRdmaAsync(
        put, *token, "",
        [this, shared, done = std::move(done)](Result<s3::S3Client::RdmaGetReply> r) mutable {
          if (r && !r->declined) {
            path_.counters()->bytes_rdma_sent += shared->data.size();
            return done(r->etag);
          }
          if (r)
            path_.Declined(r->why, "PUT");
          else if (r.error().http_status == 0)  // the server may still READ this span
            path_.LostReply(r.error(), "PUT");
          else
            path_.Failed(r.error(), "PUT");
          OverHttp(std::move(*shared), std::move(done));
        });
  }

 private:
  static constexpr size_t kSmallestRdmaUpload = 4096;

  void OverHttp(UploadJob job, std::function<void(Result<std::string>)> done) {
    TransportCounters* counters = path_.counters();
    size_t n = job.data.size();
    http_->Upload(std::move(job), [counters, n, done = std::move(done)](Result<std::string> r) {
      if (r) counters->bytes_http_sent += n;
      done(std::move(r));
    });
  }

  s3::S3Client* client_;
  RdmaPath path_;
  PartUploader* http_;
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
