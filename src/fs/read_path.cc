// The read path: cache lookup, fills for misses, read-ahead, zero-copy reply.
#include <algorithm>

#include "handles.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {

void Filesystem::SubmitFills(const std::string& key, const meta::ObjectVersion& version,
                             std::vector<std::pair<uint64_t, cache::PinnedBlock>> blocks) {
  // Blocks arrive sorted by index; runs of consecutive indices become one
  // ranged GET of at most max_request bytes.
  const uint64_t bs = cache_->block_size();
  const uint64_t max_blocks = std::max<uint64_t>(1, options_.max_request / bs);
  size_t i = 0;
  while (i < blocks.size()) {
    size_t j = i + 1;
    while (j < blocks.size() && blocks[j].first == blocks[j - 1].first + 1 && j - i < max_blocks) ++j;
    fetch::FetchJob job;
    job.key = key;
    job.etag = version.etag;
    job.offset = blocks[i].first * bs;
    job.length = std::min(version.size, blocks[j - 1].first * bs + bs) - job.offset;
    auto pins = std::make_shared<std::vector<cache::PinnedBlock>>();
    auto lengths = std::make_shared<std::vector<uint32_t>>();
    for (size_t k = i; k < j; ++k) {
      uint64_t block_off = blocks[k].first * bs;
      uint32_t len = static_cast<uint32_t>(std::min(bs, version.size - block_off));
      job.into.emplace_back(blocks[k].second->data(), len);
      lengths->push_back(len);
      pins->push_back(std::move(blocks[k].second));
    }
    std::string what = key + " [" + std::to_string(job.offset) + "+" + std::to_string(job.length) + "]";
    cache::BlockCache* cache = cache_;
    fetcher_->Fetch(std::move(job), [cache, pins, lengths, what](Result<uint64_t> r) {
      if (!r) LOG_WARN("fetch %s failed: %s", what.c_str(), r.error().ToString().c_str());
      for (size_t k = 0; k < pins->size(); ++k) {
        if (r) cache->Complete((*pins)[k].get(), (*lengths)[k]);
        else cache->Complete((*pins)[k].get(), tl::unexpected(r.error()));
      }
      pins->clear();  // unpin: valid blocks become evictable, failed ones free
    });
    i = j;
  }
}

Result<ReadReply> Filesystem::Read(uint64_t fh, uint64_t offset, size_t size) {
  std::shared_ptr<FileHandle> h;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(fh);
    if (it == files_.end()) return MakeError(Errc::kInvalidArgument, "bad file handle");
    h = it->second;
  }
  ReadReply reply;
  const uint64_t file_size = h->version.size;
  if (offset >= file_size || size == 0) return reply;
  const uint64_t end = std::min<uint64_t>(offset + size, file_size);
  const uint64_t bs = cache_->block_size();

  readahead::Plan plan;
  {
    std::lock_guard lock(h->read_state->mu);
    plan = h->read_state->policy.OnRead(offset, end - offset, file_size);
  }

  const uint64_t first = offset / bs, last = (end - 1) / bs;
  std::vector<cache::PinnedBlock> demand;
  std::vector<std::pair<uint64_t, cache::PinnedBlock>> fills;
  for (uint64_t b = first; b <= last; ++b) {
    auto acq = cache_->AcquireWaiting({h->version.id, b}, options_.cache_wait);
    if (!acq) return tl::unexpected(acq.error());
    if (acq->state == cache::BlockCache::Acquired::kMustFill)
      fills.emplace_back(b, cache_->AddPin(acq->block));
    demand.push_back(std::move(acq->block));
  }
  if (!plan.empty()) {
    // Prefetch takes only blocks that are free or evictable right now; when
    // the arena is busy, read-ahead shrinks to nothing instead of waiting.
    for (uint64_t b = std::max(plan.begin / bs, last + 1); b * bs < plan.end; ++b) {
      auto acq = cache_->Acquire({h->version.id, b});
      if (!acq) break;
      if (acq->state == cache::BlockCache::Acquired::kMustFill) fills.emplace_back(b, std::move(acq->block));
    }
  }
  if (!fills.empty()) SubmitFills(h->key, h->version, std::move(fills));

  for (uint64_t b = first; b <= last; ++b) {
    cache::PinnedBlock& pin = demand[b - first];
    auto len = cache_->Wait(pin, options_.cache_wait);
    if (!len) {
      if (len.error().code == Errc::kPreconditionFailed) inodes_.MarkStale(h->ino);
      return tl::unexpected(len.error());
    }
    uint64_t block_off = b * bs;
    uint64_t from = std::max(offset, block_off) - block_off;
    uint64_t to = std::min<uint64_t>(end - block_off, *len);
    if (to < from || (to - from) != std::min(end, block_off + bs) - std::max(offset, block_off))
      return MakeError(Errc::kIo, "cache block shorter than the object range");
    reply.iov.push_back({pin->data() + from, static_cast<size_t>(to - from)});
    reply.bytes += to - from;
  }
  reply.pins = std::move(demand);
  return reply;
}

}  // namespace s3rdmafs::fs
