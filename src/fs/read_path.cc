// The read path: cache lookup, fills for misses, read-ahead, zero-copy reply.
#include <algorithm>
#include <atomic>
#include <future>
#include <optional>

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
    while (j < blocks.size() && blocks[j].first == blocks[j - 1].first + 1 && j - i < max_blocks)
      ++j;
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
    std::string what =
        key + " [" + std::to_string(job.offset) + "+" + std::to_string(job.length) + "]";
    cache::BlockCache* cache = cache_;
    fetcher_->Fetch(std::move(job), [cache, pins, lengths, what](Result<uint64_t> r) {
      if (!r) LOG_WARN("fetch %s failed: %s", what.c_str(), r.error().ToString().c_str());
      for (size_t k = 0; k < pins->size(); ++k) {
        if (r)
          cache->Complete((*pins)[k].get(), (*lengths)[k]);
        else
          cache->Complete((*pins)[k].get(), tl::unexpected(r.error()));
      }
      pins->clear();  // unpin: valid blocks become evictable, failed ones free
    });
    i = j;
  }
}

// State of one read while its blocks are being filled.
struct PendingRead {
  uint64_t offset = 0, end = 0, first = 0, block_size = 0, ino = 0;
  std::vector<cache::PinnedBlock> pins;
  std::vector<uint32_t> lengths;
  std::atomic<size_t> remaining{0};
  std::mutex mu;
  std::optional<Error> error;  // guarded by mu (first error wins)
  std::function<void(Result<ReadReply>)> done;
  meta::InodeTable* inodes = nullptr;

  void BlockReady(size_t i, Result<uint32_t> r) {
    if (r) {
      lengths[i] = *r;
    } else {
      std::lock_guard lock(mu);
      if (!error) error = r.error();
    }
    if (remaining.fetch_sub(1) == 1) Finish();
  }

  void Finish() {
    if (error) {
      if (error->code == Errc::kPreconditionFailed) inodes->MarkStale(ino);
      return done(tl::unexpected(*error));
    }
    ReadReply reply;
    for (size_t i = 0; i < pins.size(); ++i) {
      uint64_t block_off = (first + i) * block_size;
      uint64_t from = std::max(offset, block_off) - block_off;
      uint64_t to = std::min<uint64_t>(end - block_off, lengths[i]);
      if (to < from ||
          (to - from) != std::min(end, block_off + block_size) - std::max(offset, block_off))
        return done(MakeError(Errc::kIo, "cache block shorter than the object range"));
      reply.iov.push_back({pins[i]->data() + from, static_cast<size_t>(to - from)});
      reply.bytes += to - from;
    }
    reply.pins = std::move(pins);
    done(std::move(reply));
  }
};

// Whoever comes first answers a read: its data, or its deadline.
struct OnceReply {
  std::atomic<bool> answered{false};
  std::function<void(Result<ReadReply>)> done;
  uint64_t timer = 0;
  bool Answer(Result<ReadReply> r) {
    if (answered.exchange(true)) return false;
    auto fn = std::move(done);
    fn(std::move(r));
    return true;
  }
};

void Filesystem::ReadAsync(uint64_t fh, uint64_t offset, size_t size,
                           std::function<void(Result<ReadReply>)> done) {
  auto once = std::make_shared<OnceReply>();
  once->done = std::move(done);
  const auto limit = options_.read_timeout;
  once->timer = read_deadlines_.After(limit, [once, limit] {
    once->Answer(MakeError(Errc::kTimedOut, "the read did not complete within " +
                                                std::to_string(limit.count() / 1000) +
                                                " s (fuse.read_timeout)"));
  });
  ReadOnce(fh, offset, size, true, [this, once](Result<ReadReply> r) {
    read_deadlines_.Cancel(once->timer);
    once->Answer(std::move(r));
  });
}

// A handle that has not read a byte yet and finds its version replaced
// (412) was opened after another client's overwrite, from attributes cached
// before it: close-to-open says it sees the new version. One HEAD, then the
// read again at that version. A handle that did read keeps ESTALE: mixing
// versions in one open file would be worse.
void Filesystem::Revalidate(std::shared_ptr<FileHandle> h, uint64_t fh, uint64_t offset,
                            size_t size, Error stale, std::function<void(Result<ReadReply>)> done) {
  store_->HeadAsync(h->key, [this, h, fh, offset, size, stale = std::move(stale),
                             done = std::move(done)](Result<s3::ObjectInfo> info) mutable {
    if (!info) return done(tl::unexpected(stale));
    inodes_.RefreshFile(h->ino, *info);
    auto v = inodes_.Get(h->ino);
    if (!v || v->version.etag != info->etag) return done(tl::unexpected(stale));
    {
      std::lock_guard lock(handles_mu_);
      h->version = v->version;
    }
    inodes_.SetLastOpened(h->ino, v->version.id);
    ReadOnce(fh, offset, size, false, std::move(done));
  });
}

void Filesystem::ReadOnce(uint64_t fh, uint64_t offset, size_t size, bool may_revalidate,
                          std::function<void(Result<ReadReply>)> done) {
  std::shared_ptr<FileHandle> h;
  meta::ObjectVersion version;
  std::string key;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(fh);
    if (it == files_.end()) return done(MakeError(Errc::kInvalidArgument, "bad file handle"));
    h = it->second;
    version = h->version;
    key = h->key;
    auto p = preserved_.find(h->ino);
    if (p != preserved_.end() && p->second.version_id == version.id) {
      key = p->second.key;  // a rename replaced it: the copy kept aside
      version.etag = p->second.etag;
      may_revalidate = false;
    }
  }
  if (h->dirty) {
    // Unsaved bytes are read from the write state; once saved, reads go
    // through the cache again, at the version just published.
    if (h->dirty->dirty()) return done(ReadDirty(h->dirty.get(), offset, size));
    if (auto v = inodes_.Get(h->ino); v && !v->version.etag.empty()) {
      version = v->version;
      key = v->key;  // a rename moved it
    }
  }
  if (h->dirty) may_revalidate = false;
  const bool first_read = !h->has_read.load();
  // A retry runs on a completion thread: it must not wait for cache blocks.
  const auto cache_wait =
      may_revalidate || !first_read ? options_.cache_wait : std::chrono::milliseconds(0);
  if (first_read) {
    done = [this, h, fh, offset, size, may_revalidate,
            done = std::move(done)](Result<ReadReply> r) mutable {
      if (r && r->bytes) h->has_read = true;
      if (r || !may_revalidate || r.error().code != Errc::kPreconditionFailed)
        return done(std::move(r));
      Revalidate(h, fh, offset, size, r.error(), std::move(done));
    };
  }
  const uint64_t file_size = version.size;
  if (offset >= file_size || size == 0) return done(ReadReply{});
  const uint64_t end = std::min<uint64_t>(offset + size, file_size);
  const uint64_t bs = cache_->block_size();

  readahead::Plan plan;
  {
    std::lock_guard lock(h->read_state->mu);
    plan = h->read_state->policy.OnRead(offset, end - offset, file_size);
  }

  auto pending = std::make_shared<PendingRead>();
  pending->offset = offset;
  pending->end = end;
  pending->first = offset / bs;
  pending->block_size = bs;
  pending->ino = h->ino;
  pending->inodes = &inodes_;
  pending->done = std::move(done);
  const uint64_t last = (end - 1) / bs;
  std::vector<std::pair<uint64_t, cache::PinnedBlock>> fills;
  for (uint64_t b = pending->first; b <= last; ++b) {
    auto acq = cache_->AcquireWaiting({version.id, b}, cache_wait);
    if (!acq) {
      if (acq.error().code != Errc::kNoSpace) return pending->done(tl::unexpected(acq.error()));
      // Programs that call read() know EIO and ETIMEDOUT, not ENOBUFS.
      return pending->done(
          MakeError(Errc::kTimedOut, "no cache block came free within cache.wait_timeout (" +
                                         acq.error().message + "; a larger cache.size helps)"));
    }
    if (acq->state == cache::BlockCache::Acquired::kMustFill)
      fills.emplace_back(b, cache_->AddPin(acq->block));
    pending->pins.push_back(std::move(acq->block));
  }
  if (!plan.empty()) {
    // Prefetch takes only blocks that are free or evictable right now; when
    // the arena is busy, read-ahead shrinks to nothing instead of waiting.
    for (uint64_t b = std::max(plan.begin / bs, last + 1); b * bs < plan.end; ++b) {
      auto acq = cache_->Acquire({version.id, b});
      if (!acq) break;
      if (acq->state == cache::BlockCache::Acquired::kMustFill)
        fills.emplace_back(b, std::move(acq->block));
    }
  }
  pending->lengths.resize(pending->pins.size());
  // One count for this function itself, so Finish cannot run before every
  // waiter is registered.
  pending->remaining = pending->pins.size() + 1;
  if (!fills.empty()) SubmitFills(key, version, std::move(fills));
  for (size_t i = 0; i < pending->pins.size(); ++i)
    cache_->OnReady(pending->pins[i],
                    [pending, i](Result<uint32_t> r) { pending->BlockReady(i, std::move(r)); });
  if (pending->remaining.fetch_sub(1) == 1) pending->Finish();
}

Result<ReadReply> Filesystem::Read(uint64_t fh, uint64_t offset, size_t size) {
  std::promise<Result<ReadReply>> promise;
  auto future = promise.get_future();
  ReadAsync(fh, offset, size, [&promise](Result<ReadReply> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace s3rdmafs::fs
