#include "s3rdmafs/fetch/range_fetcher.h"

namespace s3rdmafs::fetch {
namespace {

class HttpRangeFetcher final : public RangeFetcher {
 public:
  explicit HttpRangeFetcher(s3::ObjectStore* store) : store_(store) {}

  void Fetch(FetchJob job, std::function<void(Result<uint64_t>)> done) override {
    s3::GetRequest get;
    get.key = std::move(job.key);
    get.offset = job.offset;
    get.length = job.length;
    get.if_match = std::move(job.etag);
    get.into = std::move(job.into);
    store_->GetAsync(std::move(get), [done = std::move(done)](Result<s3::GetResult> r) {
      if (!r) return done(tl::unexpected(r.error()));
      done(r->bytes);
    });
  }
  const char* name() const override { return "http"; }

 private:
  s3::ObjectStore* store_;
};

}  // namespace

std::unique_ptr<RangeFetcher> MakeHttpRangeFetcher(s3::ObjectStore* store) {
  return std::make_unique<HttpRangeFetcher>(store);
}

}  // namespace s3rdmafs::fetch
