// The read path: cache lookup, fills for misses, read-ahead, zero-copy reply.
#include <algorithm>
#include <atomic>
#include <future>
#include <optional>

#include "open_files.h"
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

// One read while its blocks are acquired and filled.
struct Filesystem::PendingRead {
  uint64_t offset = 0, end = 0, last = 0, block_size = 0;
  std::string key;
  meta::ObjectVersion version;
  std::shared_ptr<ReadState> read_state;
  readahead::Plan plan;
  std::chrono::steady_clock::time_point wait_deadline;  // cache.wait_timeout
  std::atomic<uint64_t> epoch{0};  // one resume per wait: the first wake-up wins
  // Held by each pass of ContinueRead: a wake-up can come while the pass
  // that is about to wait still tidies up, and the resumed pass waits for it.
  std::mutex pass_mu;
  // Bytes [offset, offset + copied.size()) taken out of blocks while this
  // read waited for the rest; pins[0] is then the block at that point.
  std::vector<std::byte> copied;
  std::vector<cache::PinnedBlock> pins;
  std::vector<uint32_t> lengths;
  std::atomic<size_t> remaining{0};

  uint64_t resume() const { return offset + copied.size(); }
  std::mutex mu;
  std::optional<Error> error;  // guarded by mu (first error wins)
  std::function<void(Result<ReadReply>)> done;

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
    if (error) return done(tl::unexpected(*error));
    ReadReply reply;
    const uint64_t start = resume();
    if (!copied.empty()) {
      reply.owned = std::move(copied);
      reply.iov.push_back({reply.owned.data(), reply.owned.size()});
      reply.bytes = reply.owned.size();
    }
    for (size_t i = 0; i < pins.size(); ++i) {
      uint64_t block_off = (start / block_size + i) * block_size;
      uint64_t from = std::max(start, block_off) - block_off;
      uint64_t to = std::min<uint64_t>(end - block_off, lengths[i]);
      if (to < from ||
          (to - from) != std::min(end, block_off + block_size) - std::max(start, block_off))
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
  explicit OnceReply(WorkGate::Pass p) : pass(std::move(p)) {}
  // Held until the answer has been given (the reply is out): everything
  // that produces it - fills, a re-validation, the continuation that marks
  // an inode stale - runs before. Not until the last reference goes: a
  // read that waited for cache space leaves a wake-up registered with the
  // cache that may never fire, and shutdown must not wait for that.
  WorkGate::Pass pass;
  std::atomic<bool> answered{false};
  std::function<void(Result<ReadReply>)> done;
  uint64_t timer = 0;
  bool Answer(Result<ReadReply> r) {
    if (answered.exchange(true)) return false;
    auto fn = std::move(done);
    fn(std::move(r));
    pass.Release();
    return true;
  }
};

void Filesystem::ReadAsync(uint64_t fh, uint64_t offset, size_t size,
                           std::function<void(Result<ReadReply>)> done) {
  auto pass = reads_.Enter();
  if (!pass) return done(MakeError(Errc::kCancelled, "the mount is shutting down"));
  auto once = std::make_shared<OnceReply>(std::move(*pass));
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
void Filesystem::Revalidate(const std::shared_ptr<FileHandle>& h, uint64_t fh, uint64_t offset,
                            size_t size, Error stale, std::function<void(Result<ReadReply>)> done) {
  store_->HeadAsync(h->key, [this, h, fh, offset, size, stale = std::move(stale),
                             done = std::move(done)](Result<s3::ObjectInfo> info) mutable {
    if (!info) return done(tl::unexpected(stale));
    inodes_.RefreshFile(h->ino, *info);
    auto v = inodes_.Get(h->ino);
    if (!v || v->version.etag != info->etag) return done(tl::unexpected(stale));
    open_->SetVersion(*h, v->version);
    inodes_.SetLastOpened(h->ino, v->version.id);
    ReadOnce(fh, offset, size, false, std::move(done));
  });
}

void Filesystem::ReadOnce(uint64_t fh, uint64_t offset, size_t size, bool may_revalidate,
                          std::function<void(Result<ReadReply>)> done) {
  std::shared_ptr<FileHandle> h = open_->File(fh);
  if (!h) return done(MakeError(Errc::kInvalidArgument, "bad file handle"));
  auto [key, version, aside] = open_->ReadTargetOf(*h);
  if (aside) may_revalidate = false;  // a rename replaced it: the copy kept aside
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

  auto p = std::make_shared<PendingRead>();
  p->offset = offset;
  p->end = end;
  p->last = (end - 1) / bs;
  p->block_size = bs;
  p->key = std::move(key);
  p->version = version;
  p->read_state = h->read_state;
  p->plan = plan;
  p->wait_deadline = std::chrono::steady_clock::now() + options_.cache_wait;
  // The read's continuation is the filesystem's own: it may touch the
  // inode table because it runs before the answer, while the read's pass
  // (ReadAsync) keeps Quiesce waiting.
  p->done = [this, ino = h->ino, done = std::move(done)](Result<ReadReply> r) mutable {
    if (!r && r.error().code == Errc::kPreconditionFailed) inodes_.MarkStale(ino);
    done(std::move(r));
  };
  ContinueRead(std::move(p));
}

void Filesystem::ResumeRead(const std::shared_ptr<PendingRead>& p, uint64_t epoch) {
  uint64_t expected = epoch;
  if (!p->epoch.compare_exchange_strong(expected, epoch + 1)) return;  // already resumed
  // On the timer thread, never inline in the unpin that woke it: that may be
  // deep in another read's reply.
  read_deadlines_.After(std::chrono::milliseconds(0), [this, p] { ContinueRead(p); });
}

void Filesystem::ContinueRead(std::shared_ptr<PendingRead> p) {
  std::lock_guard pass(p->pass_mu);
  const uint64_t bs = p->block_size;
  const uint64_t id = p->version.id;
  std::vector<std::pair<uint64_t, cache::PinnedBlock>> fills;
  size_t valid_prefix = 0;  // leading pins whose blocks were already valid
  for (uint64_t b = p->resume() / bs; b <= p->last; ++b) {
    std::chrono::steady_clock::time_point retry_at;
    const uint64_t epoch = p->epoch.load();
    auto acq = cache_->AcquireOrNotify(
        {id, b}, [this, p, epoch] { ResumeRead(p, epoch); }, &retry_at);
    if (acq) {
      if (acq->state == cache::BlockCache::Acquired::kMustFill)
        fills.emplace_back(b, cache_->AddPin(acq->block));
      if (acq->state == cache::BlockCache::Acquired::kHit && valid_prefix == p->pins.size())
        ++valid_prefix;
      p->pins.push_back(std::move(acq->block));
      continue;
    }
    // Fills already taken are needed whatever happens: send them.
    if (!fills.empty()) SubmitFills(p->key, p->version, std::move(fills));
    // Wait holding nothing: readers that each hold one block while they
    // wait for the next (a read across a block boundary) wedge a small
    // cache. The bytes of blocks already valid are copied out (this read
    // consumed them); blocks still filling are kept from eviction (held)
    // and found again on resume.
    bool copying = true;
    for (size_t i = 0; i < p->pins.size(); ++i) {
      cache::PinnedBlock& pin = p->pins[i];
      // While copying, the resume point is where pins[i]'s bytes begin.
      const uint64_t start = p->resume(), block_off = start / bs * bs;
      const uint64_t want = std::min(p->end, block_off + bs) - start;
      copying = copying && i < valid_prefix && pin->length() >= start - block_off + want;
      if (copying) {
        const std::byte* from = pin->data() + (start - block_off);
        p->copied.insert(p->copied.end(), from, from + want);
        pin.SetRetention(cache::Retention::kLru);  // read to its end, by this read
      } else {
        pin.SetRetention(cache::Retention::kHold);
      }
    }
    p->pins.clear();
    // An answer now must win against a resume already under way.
    auto answer = [&](tl::unexpected<Error> e) {
      uint64_t expected = epoch;
      if (p->epoch.compare_exchange_strong(expected, epoch + 1)) p->done(std::move(e));
    };
    if (acq.error().code != Errc::kNoSpace) return answer(tl::unexpected(acq.error()));
    const auto now = std::chrono::steady_clock::now();
    if (now >= p->wait_deadline)  // programs that call read() know ETIMEDOUT, not ENOBUFS
      return answer(MakeError(Errc::kTimedOut,
                              "no cache block came free within cache.wait_timeout (every block "
                              "is in use; a larger cache.size helps)"));
    auto wake = std::min(retry_at, p->wait_deadline);
    read_deadlines_.After(std::chrono::ceil<std::chrono::milliseconds>(wake - now),
                          [this, p, epoch] { ResumeRead(p, epoch); });
    return;
  }
  // A sequential reader that stops part-way through its last block comes
  // back for the rest: keep that block from eviction while it does.
  const uint64_t file_size = p->version.size;
  for (auto& pin : p->pins) pin.SetRetention(cache::Retention::kLru);
  if (p->plan.sequential && p->end < std::min(file_size, (p->last + 1) * bs))
    p->pins.back().SetRetention(cache::Retention::kHold);
  if (!p->plan.empty()) {
    // Read-ahead takes only blocks that are free or cold right now; when the
    // cache is busy, the stream's window shrinks instead of waiting.
    uint64_t b = std::max(p->plan.begin / bs, p->last + 1);
    for (; b * bs < p->plan.end; ++b) {
      auto acq = cache_->AcquireForPrefetch({id, b});
      if (!acq) break;
      if (acq->state == cache::BlockCache::Acquired::kMustFill)
        fills.emplace_back(b, std::move(acq->block));
    }
    if (b * bs < p->plan.end) {
      std::lock_guard lock(p->read_state->mu);
      p->read_state->policy.Shortfall(p->plan, b * bs);
    }
    p->plan = {};  // planned once, even if this read is answered later
  }
  p->lengths.resize(p->pins.size());
  // One count for this function itself, so Finish cannot run before every
  // waiter is registered.
  p->remaining = p->pins.size() + 1;
  if (!fills.empty()) SubmitFills(p->key, p->version, std::move(fills));
  for (size_t i = 0; i < p->pins.size(); ++i)
    cache_->OnReady(p->pins[i], [p, i](Result<uint32_t> r) { p->BlockReady(i, std::move(r)); });
  if (p->remaining.fetch_sub(1) == 1) p->Finish();
}

uint64_t Filesystem::Quiesce(std::chrono::milliseconds budget) {
  return reads_.CloseAndWait(budget);
}

Result<ReadReply> Filesystem::Read(uint64_t fh, uint64_t offset, size_t size) {
  std::promise<Result<ReadReply>> promise;
  auto future = promise.get_future();
  ReadAsync(fh, offset, size, [&promise](Result<ReadReply> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace s3rdmafs::fs
