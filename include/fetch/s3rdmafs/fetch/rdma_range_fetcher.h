// RangeFetcher over RDMA-S3 with an HTTP fallback (docs/PROTOCOL.md).
//  - Each run of a job's blocks that lie next to each other in the arena is
//    one GET with an RC token naming exactly that window (the cache places a
//    block after its predecessor when it can, so a streaming read's job is
//    usually one window).
//  - A declined request (501, or no x-amz-rdma-reply) and any request that got
//    a reply but failed (the reply is the fence: nothing more will land) is
//    retried over plain HTTP into the same blocks; declines also switch the
//    endpoint to HTTP for `declined_backoff`.
//  - Every request's window is closed when it ends (TokenSource::Close), so
//    a token works only while its request runs.
//  - A request with no reply at all (connection lost, timeout) may still be
//    followed by a late RDMA WRITE: it is never sent again with its token.
//    Closing its window fences it (a memory window is invalidated); where
//    that cannot be made sure (a region-wide key, a failed invalidation) the
//    connection is retired, and RdmaLinks makes a new one in the background.
//    Either way the job is redone over HTTP.
// Thread-safety: Fetch may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "s3rdmafs/fetch/part_uploader.h"
#include "s3rdmafs/fetch/range_fetcher.h"
#include "s3rdmafs/fetch/rdma_links.h"
#include "s3rdmafs/rdma/token_source.h"
#include "s3rdmafs/s3/rdma_store.h"

namespace s3rdmafs::fetch {

struct TransportCounters {
  std::atomic<uint64_t> bytes_rdma{0};
  std::atomic<uint64_t> bytes_http{0};
  std::atomic<uint64_t> bytes_rdma_sent{0};  // uploads the server RDMA-READ
  std::atomic<uint64_t> bytes_http_sent{0};  // uploads that went over HTTP (fallbacks included)
  std::atomic<uint64_t> fallbacks_declined{0};
  std::atomic<uint64_t> fallbacks_failed{0};
  std::atomic<uint64_t> connections_retired{0};
  // Requests without a reply whose window alone was invalidated (the
  // connection stayed): quarantine per window.
  std::atomic<uint64_t> windows_fenced{0};
};

// `links`: one RDMA endpoint (used for every request), or one per S3
// endpoint of `client`, in its order: a job goes by RDMA to the endpoint its
// bytes go to (RdmaStore::EndpointFor), over HTTP while that link is down.
std::unique_ptr<RangeFetcher> MakeRdmaRangeFetcher(s3::RdmaStore* client,
                                                   std::shared_ptr<RdmaLinks> links,
                                                   RangeFetcher* http, TransportCounters* counters,
                                                   std::chrono::milliseconds declined_backoff);

// PartUploader over RDMA-S3 (PUT/UploadPart with a token; the server RDMA-READs
// the span) with the same fallback rules as the fetcher: declined -> HTTP for
// `declined_backoff`; failed with a reply -> this upload over HTTP; no reply
// -> the connection is retired first (a late READ must not see reused memory).
std::unique_ptr<PartUploader> MakeRdmaPartUploader(s3::RdmaStore* client,
                                                   std::shared_ptr<RdmaLinks> links,
                                                   PartUploader* http, TransportCounters* counters,
                                                   std::chrono::milliseconds declined_backoff);

}  // namespace s3rdmafs::fetch
