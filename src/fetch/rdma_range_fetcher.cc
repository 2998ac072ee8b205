#include "s3rdmafs/fetch/rdma_range_fetcher.h"

#include <mutex>
#include <optional>
#include <span>

#include "rdma_path.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fetch {
namespace {

class RdmaRangeFetcher final : public RangeFetcher {
 public:
  RdmaRangeFetcher(s3::RdmaStore* client, std::shared_ptr<RdmaLinks> links, RangeFetcher* http,
                   TransportCounters* counters, std::chrono::milliseconds backoff)
      : client_(client), paths_(std::move(links), counters, backoff), http_(http) {}

  const char* name() const override { return "rdma"; }

  void Fetch(FetchJob job, std::function<void(Result<uint64_t>)> done) override {
    const RdmaPaths::Route route = paths_.For(*client_, job.key, job.offset);
    if (!route.path) return OverHttp(std::move(job), std::move(done));
    // One RDMA GET per span; the job completes when all have answered.
    auto st = std::make_shared<State>();
    st->path = route.path;
    st->conn = route.conn;
    st->job = std::move(job);
    st->done = std::move(done);
    // Blocks that lie next to each other in the arena share one window, one
    // token and one request (a streaming read's blocks mostly do).
    std::vector<std::span<std::byte>> windows;
    for (auto& span : st->job.into) {
      if (!windows.empty() && windows.back().data() + windows.back().size() == span.data())
        windows.back() =
            std::span<std::byte>(windows.back().data(), windows.back().size() + span.size());
      else
        windows.push_back(span);
    }
    st->remaining = windows.size();
    uint64_t offset = st->job.offset;
    for (auto& span : windows) {
      auto window = route.conn->Open(span.data(), span.size(), rdma::Access::kServerWrites);
      uint64_t this_offset = offset;
      offset += span.size();
      auto finish_one = [this, st, window](Result<s3::RdmaReply> r) {
        // The token stops working now, whatever the answer was (a replay
        // must not reach blocks about to be reused).
        const bool fenced = window && st->conn->Close(*window);
        {
          std::lock_guard lock(st->mu);
          if (!r) {
            // http_status != 0: the server answered, so no late write can follow.
            if (r.error().http_status != 0)
              st->replied_failure = true;
            else
              (fenced ? st->fenced : st->lost) = true;
            if (!st->error) st->error = r.error();
          } else if (r->declined) {
            (r->connection_unknown ? st->gone : st->declined) = true;
            if (r->served_over_http)
              st->served_over_http += r->bytes;
            else
              st->all_served = false;
            if (!st->error) st->error = Error(Errc::kConnection, r->why);
          }
        }
        if (st->remaining.fetch_sub(1) == 1) Settle(*st);
      };
      if (!window) {  // the connection ended just now: nothing was sent
        finish_one(tl::unexpected(Error(window.error().code, window.error().message, 400)));
        continue;
      }
      client_->GetRdmaAsync(st->job.key, this_offset, span, st->job.etag, window->token,
                            std::move(finish_one), route.endpoint);
    }
  }

 private:
  struct State {
    RdmaPath* path;
    std::shared_ptr<rdma::TokenSource> conn;
    FetchJob job;
    std::function<void(Result<uint64_t>)> done;
    std::atomic<size_t> remaining{0};
    std::mutex mu;
    // How the spans ended, worst first: a lost reply whose window could not
    // be fenced alone, one whose window was, a server that no longer knows
    // the connection, a decline, a failure it answered.
    bool lost = false, fenced = false, gone = false, declined = false,
         replied_failure = false;  // guarded by mu
    std::optional<Error> error;    // guarded by mu
    // Declined spans whose bytes came as the HTTP body (Ceph RGW's way): all
    // of them, or some spans still need fetching.
    uint64_t served_over_http = 0;  // guarded by mu
    bool all_served = true;         // guarded by mu
  };

  // Every span has answered: no RDMA of this job is outstanding (or the
  // connection is retired first), so the blocks may be written by HTTP.
  void Settle(State& st) {
    if (!st.lost && !st.fenced && !st.gone && !st.declined && !st.replied_failure) {
      paths_.counters()->bytes_rdma += st.job.length;
      return st.done(st.job.length);
    }
    Error why = st.error ? *st.error : Error(Errc::kConnection, "RDMA request lost");
    if (st.lost) {
      // A late WRITE could still land: the connection is retired (its
      // registration gone) before these blocks are written again, by HTTP.
      st.path->LostReply(st.conn, why, "GET");
      if (why.code == Errc::kCancelled) return st.done(tl::unexpected(why));
    } else if (st.fenced) {
      st.path->Fenced(why, "GET");
      if (why.code == Errc::kCancelled) return st.done(tl::unexpected(why));
    } else if (st.gone) {
      st.path->Gone(st.conn, why, "GET");
    } else if (st.declined) {
      st.path->Declined(why.message, "GET");
      if (st.all_served && !st.replied_failure) {
        // Every span that was not moved by RDMA came as its HTTP body:
        // nothing is fetched twice.
        paths_.counters()->bytes_http += st.served_over_http;
        paths_.counters()->bytes_rdma += st.job.length - st.served_over_http;
        return st.done(st.job.length);
      }
    } else {
      st.path->Failed(why, "GET");
    }
    OverHttp(std::move(st.job), std::move(st.done));
  }

  void OverHttp(FetchJob job, std::function<void(Result<uint64_t>)> done) {
    TransportCounters* counters = paths_.counters();
    http_->Fetch(std::move(job), [counters, done = std::move(done)](Result<uint64_t> r) {
      if (r) counters->bytes_http += *r;
      done(std::move(r));
    });
  }

  s3::RdmaStore* client_;
  RdmaPaths paths_;
  RangeFetcher* http_;
};

}  // namespace

std::unique_ptr<RangeFetcher> MakeRdmaRangeFetcher(s3::RdmaStore* client,
                                                   std::shared_ptr<RdmaLinks> links,
                                                   RangeFetcher* http, TransportCounters* counters,
                                                   std::chrono::milliseconds declined_backoff) {
  return std::make_unique<RdmaRangeFetcher>(client, std::move(links), http, counters,
                                            declined_backoff);
}

}  // namespace s3rdmafs::fetch
