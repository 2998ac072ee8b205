#include "s3rdmafs/fetch/rdma_range_fetcher.h"

#include <mutex>
#include <optional>

#include "rdma_path.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fetch {
namespace {

class RdmaRangeFetcher final : public RangeFetcher {
 public:
  RdmaRangeFetcher(s3::S3Client* client,
                   const std::vector<std::shared_ptr<rdma::TokenSource>>& conns, RangeFetcher* http,
                   TransportCounters* counters, std::chrono::milliseconds backoff)
      : client_(client), paths_(conns, counters, backoff), http_(http) {}

  const char* name() const override { return "rdma"; }

  void Fetch(FetchJob job, std::function<void(Result<uint64_t>)> done) override {
    const RdmaPaths::Route route = paths_.For(*client_, job.key, job.offset);
    if (!route.path || !route.path->Usable()) return OverHttp(std::move(job), std::move(done));
    // One RDMA GET per span; the job completes when all have answered.
    struct State {
      RdmaPath* path;
      FetchJob job;
      std::function<void(Result<uint64_t>)> done;
      std::atomic<size_t> remaining{0};
      std::mutex mu;
      bool declined = false, replied_failure = false, lost = false;  // guarded by mu
      std::optional<Error> error;                                    // guarded by mu
    };
    auto st = std::make_shared<State>();
    st->path = route.path;
    st->job = std::move(job);
    st->done = std::move(done);
    st->remaining = st->job.into.size();
    uint64_t offset = st->job.offset;
    for (auto& span : st->job.into) {
      auto token = route.path->TokenFor(span.data(), span.size());
      uint64_t this_offset = offset;
      offset += span.size();
      auto finish_one = [this, st](Result<s3::S3Client::RdmaGetReply> r) {
        {
          std::lock_guard lock(st->mu);
          if (!r) {
            // http_status != 0: the server answered, so no late write can follow.
            if (r.error().http_status != 0)
              st->replied_failure = true;
            else
              st->lost = true;
            if (!st->error) st->error = r.error();
          } else if (r->declined) {
            st->declined = true;
            if (!st->error) st->error = Error(Errc::kConnection, r->why);
          }
        }
        if (st->remaining.fetch_sub(1) == 1)
          Settle(*st->path, st->job, st->done, st->declined, st->replied_failure, st->lost,
                 st->error);
      };
      if (!token) {
        finish_one(Result<s3::S3Client::RdmaGetReply>(
            s3::S3Client::RdmaGetReply{true, token.error().message, 0, ""}));
        continue;
      }
      client_->GetRdmaAsync(st->job.key, this_offset, span.size(), st->job.etag, *token,
                            std::move(finish_one), route.endpoint);
    }
  }

 private:
  void Settle(RdmaPath& path, FetchJob& job, std::function<void(Result<uint64_t>)>& done,
              bool declined, bool replied_failure, bool lost, const std::optional<Error>& error) {
    if (!declined && !replied_failure && !lost) {
      paths_.counters()->bytes_rdma += job.length;
      return done(job.length);
    }
    Error why = error ? *error : Error(Errc::kConnection, "RDMA request lost");
    if (lost) {
      // A late WRITE could still land: retire the region before these blocks go back to the cache.
      path.LostReply(why, "GET");
      return done(tl::unexpected(why));
    }
    if (declined)
      path.Declined(why.message, "GET");
    else
      path.Failed(why, "GET");
    OverHttp(std::move(job), std::move(done));
  }

  void OverHttp(FetchJob job, std::function<void(Result<uint64_t>)> done) {
    TransportCounters* counters = paths_.counters();
    http_->Fetch(std::move(job), [counters, done = std::move(done)](Result<uint64_t> r) {
      if (r) counters->bytes_http += *r;
      done(std::move(r));
    });
  }

  s3::S3Client* client_;
  RdmaPaths paths_;
  RangeFetcher* http_;
};

}  // namespace

std::unique_ptr<RangeFetcher> MakeRdmaRangeFetcher(
    s3::S3Client* client, const std::vector<std::shared_ptr<rdma::TokenSource>>& tokens,
    RangeFetcher* http, TransportCounters* counters, std::chrono::milliseconds declined_backoff) {
  return std::make_unique<RdmaRangeFetcher>(client, tokens, http, counters, declined_backoff);
}

}  // namespace s3rdmafs::fetch
