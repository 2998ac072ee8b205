#include "rdma_path.h"
#include "s3rdmafs/fetch/rdma_range_fetcher.h"
#include "s3rdmafs/protocol/crc32c.h"

namespace s3rdmafs::fetch {
namespace {

class RdmaPartUploader final : public PartUploader {
 public:
  RdmaPartUploader(s3::RdmaStore* client, std::shared_ptr<RdmaLinks> links, PartUploader* http,
                   TransportCounters* counters, std::chrono::milliseconds backoff)
      : client_(client), paths_(std::move(links), counters, backoff), http_(http) {}

  const char* name() const override { return "rdma"; }
  bool needs_registered_memory() const override { return true; }

  void Upload(UploadJob job, std::function<void(Result<std::string>)> done) override {
    // Empty bodies have no window to name; tiny ones are cheaper as a body.
    // The parts of one upload spread like ranges of a read (gateways are stateless).
    const RdmaPaths::Route route =
        paths_.For(*client_, job.key, uint64_t{job.part_number} * s3::RdmaStore::kSpreadBytes);
    if (job.data.size() < kSmallestRdmaUpload || !route.path)
      return OverHttp(std::move(job), std::move(done));
    RdmaPath* path = route.path;
    auto window = route.conn->Open(job.data.data(), job.data.size(), rdma::Access::kServerReads);
    if (!window) return OverHttp(std::move(job), std::move(done));
    s3::PutRequest put;
    put.key = job.key;
    put.meta = job.meta;
    put.condition = job.condition;
    put.upload_id = job.upload_id;
    put.part_number = job.part_number;
    // Always checked: the server verifies the bytes it RDMA-READ before
    // storing them, so a mis-read (a reused window, a bad NIC) never becomes data.
    const std::string crc = protocol::Crc32cBase64(job.data.data(), job.data.size());
    auto shared = std::make_shared<UploadJob>(std::move(job));
    client_->PutRdmaAsync(
        put, window->token, crc,
        [this, path, conn = route.conn, window = *window, shared,
         done = std::move(done)](Result<s3::RdmaReply> r) mutable {
          // The token stops working now: a replay must not read a buffer
          // that holds another part by then.
          const bool fenced = conn->Close(window);
          if (r && !r->declined) {
            paths_.counters()->bytes_rdma_sent += shared->data.size();
            return done(r->etag);
          }
          if (r && r->connection_unknown)
            path->Gone(conn, Error(Errc::kConnection, r->why), "PUT");
          else if (r)
            path->Declined(r->why, "PUT");
          else if (r.error().http_status == 0 && fenced)  // no reply, but nothing more reads it
            path->Fenced(r.error(), "PUT");
          else if (r.error().http_status == 0)  // the server may still READ this span
            path->LostReply(conn, r.error(), "PUT");
          else
            path->Failed(r.error(), "PUT");
          OverHttp(std::move(*shared), std::move(done));
        },
        route.endpoint);
  }

 private:
  static constexpr size_t kSmallestRdmaUpload = 4096;

  void OverHttp(UploadJob job, std::function<void(Result<std::string>)> done) {
    TransportCounters* counters = paths_.counters();
    size_t n = job.data.size();
    http_->Upload(std::move(job), [counters, n, done = std::move(done)](Result<std::string> r) {
      if (r) counters->bytes_http_sent += n;
      done(std::move(r));
    });
  }

  s3::RdmaStore* client_;
  RdmaPaths paths_;
  PartUploader* http_;
};

}  // namespace

std::unique_ptr<PartUploader> MakeRdmaPartUploader(s3::RdmaStore* client,
                                                   std::shared_ptr<RdmaLinks> links,
                                                   PartUploader* http, TransportCounters* counters,
                                                   std::chrono::milliseconds declined_backoff) {
  return std::make_unique<RdmaPartUploader>(client, std::move(links), http, counters,
                                            declined_backoff);
}

}  // namespace s3rdmafs::fetch
