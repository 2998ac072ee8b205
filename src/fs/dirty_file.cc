#include "dirty_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <vector>

#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {
namespace {

constexpr uint64_t kMinPart = 5ull << 20;     // S3: all parts but the last
constexpr uint64_t kFetchChunk = 8ull << 20;  // base bytes fetched per GET
constexpr size_t kZeroChunk = 64 << 10;
const std::byte kZeros[kZeroChunk] = {};

Result<void> PwriteAll(int fd, const std::byte* data, uint64_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t w = pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      return MakeError(err == ENOSPC || err == EDQUOT ? Errc::kDiskFull : Errc::kIo,
                       std::string("staging write: ") + strerror(err));
    }
    data += w;
    n -= w;
    offset += w;
  }
  return {};
}

Result<void> PreadAll(int fd, std::byte* out, uint64_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return MakeError(Errc::kIo, std::string("staging read: ") + strerror(errno));
    if (r == 0) {  // past the staged file's end: a hole up to the logical size
      memset(out, 0, n);
      return {};
    }
    out += r;
    n -= r;
    offset += r;
  }
  return {};
}

Result<std::string> UploadNow(fetch::PartUploader* uploader, fetch::UploadJob job) {
  std::promise<Result<std::string>> p;
  auto f = p.get_future();
  uploader->Upload(std::move(job), [&p](Result<std::string> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace

DirtyFile::DirtyFile(WriteContext* ctx, std::string key)
    : ctx_(ctx),
      key_(std::move(key)),
      mode_(ctx->streaming ? Mode::kStreaming : Mode::kStaged),
      dirty_(true) {}

DirtyFile::DirtyFile(WriteContext* ctx, std::string key, std::string etag, uint64_t size)
    : ctx_(ctx),
      key_(std::move(key)),
      mode_(Mode::kStaged),
      size_(size),
      has_base_(true),
      base_etag_(std::move(etag)),
      base_limit_(size) {}

DirtyFile::~DirtyFile() {
  (void)WaitInFlight();
  AbortUpload();
  if (fd_ >= 0) close(fd_);
  ctx_->staging->Release(charged_);
}

uint64_t DirtyFile::size() const {
  std::lock_guard lock(mu_);
  return size_;
}
bool DirtyFile::dirty() const {
  std::lock_guard lock(mu_);
  return dirty_;
}
bool DirtyFile::discarded() const {
  std::lock_guard lock(mu_);
  return discarded_;
}

Result<void> DirtyFile::Write(uint64_t offset, std::span<const std::byte> data) {
  std::lock_guard lock(mu_);
  if (data.empty()) return {};
  if (offset + data.size() > ctx_->max_file_size)
    return MakeError(Errc::kTooBig, "'" + key_ + "' would pass write.max_file_size (" +
                                        std::to_string(ctx_->max_file_size >> 20) + " MiB)");
  {
    std::lock_guard done(done_mu_);
    if (error_) return tl::unexpected(*error_);
  }
  dirty_ = true;
  return mode_ == Mode::kStreaming ? StreamWrite(offset, data) : StagedWrite(offset, data);
}

// ---- streaming ----

Result<void> DirtyFile::StreamWrite(uint64_t offset, std::span<const std::byte> data) {
  while (offset > size_ && mode_ == Mode::kStreaming) {  // a hole: zeros, in order
    uint64_t n = std::min<uint64_t>(offset - size_, kZeroChunk);
    if (auto r = StreamAppend(std::span<const std::byte>(kZeros, n)); !r) return r;
  }
  if (mode_ == Mode::kStaged) return StagedWrite(offset, data);
  if (offset < size_) {
    const uint64_t end = std::min<uint64_t>(offset + data.size(), size_);
    bool in_memory = true;
    for (uint64_t n = offset / P() + 1; n <= (end - 1) / P() + 1; ++n)
      in_memory &= (n == 1 && head_) || (n == cur_part_ && cur_);
    if (!in_memory) {
      bool nothing_sent;
      {
        std::lock_guard done(done_mu_);
        nothing_sent = upload_id_.empty() && in_flight_ == 0 && parts_.empty();
      }
      if (!nothing_sent)
        return MakeError(Errc::kNotSupported,
                         "'" + key_ +
                             "': a write into a part that was already uploaded (new files stream "
                             "out in order; set write.streaming = false for random writers)");
      if (auto r = ToStaged(); !r) return r;
      return StagedWrite(offset, data);
    }
    for (uint64_t at = offset; at < end;) {
      uint64_t n = at / P() + 1;
      uint64_t part_end = std::min(end, n * P());
      std::byte* base = n == 1 ? head_.data() : cur_.data();
      memcpy(base + (at - (n - 1) * P()), data.data() + (at - offset), part_end - at);
      at = part_end;
    }
    data = data.subspan(end - offset);
  }
  return StreamAppend(data);
}

std::byte* DirtyFile::StreamSlot(uint32_t part, bool* fall_back, Error* error) {
  mem::SlotPool::Slot& slot = part == 1 ? head_ : cur_;
  if (slot) return slot.data();
  slot = ctx_->buffers->TryAcquire();
  if (slot) return slot.data();
  bool nothing_sent;
  {
    std::lock_guard done(done_mu_);
    nothing_sent = upload_id_.empty() && in_flight_ == 0;
  }
  if (nothing_sent) {  // no buffer now: this file is staged on disk instead
    *fall_back = true;
    return nullptr;
  }
  // Buffers are short: send our own part 1 (full by now) instead of holding
  // it while waiting for buffers other writers hold - with as many writers as
  // buffers, all of them would wait on each other. A later write into part 1
  // is then refused like any write into a sent part.
  if (part >= 2 && head_) {
    Result<void> shipped = EnsureUpload(meta_);
    if (shipped) shipped = ShipPart(1, std::move(head_), P());
    if (!shipped) {
      *error = shipped.error();
      return nullptr;
    }
  }
  slot = ctx_->buffers->Acquire(ctx_->buffer_wait);
  if (slot) return slot.data();
  *error = Error(Errc::kNoSpace, "no write buffer came free in time (write.buffer_memory)");
  return nullptr;
}

Result<void> DirtyFile::StreamAppend(std::span<const std::byte> data) {
  while (!data.empty()) {
    const uint32_t part = static_cast<uint32_t>(size_ / P() + 1);
    const uint64_t in_part = size_ % P();
    bool fall_back = false;
    Error error;
    std::byte* slot = StreamSlot(part, &fall_back, &error);
    if (!slot) {
      if (!fall_back) return tl::unexpected(error);
      if (auto r = ToStaged(); !r) return r;
      return StagedWrite(size_, data);
    }
    uint64_t take = std::min<uint64_t>(P() - in_part, data.size());
    memcpy(slot + in_part, data.data(), take);
    size_ += take;
    data = data.subspan(take);
    if (size_ % P() == 0 && part >= 2) {  // a full part: send it while the writer goes on
      if (auto r = EnsureUpload(meta_); !r) return r;
      if (auto r = ShipPart(part, std::move(cur_), P()); !r) return r;
      cur_part_ = part + 1;
    }
  }
  return {};
}

Result<void> DirtyFile::EnsureUpload(const s3::Metadata& meta) {
  if (!upload_id_.empty()) return {};
  auto id = ctx_->store->CreateUpload(key_, meta);
  if (!id) return tl::unexpected(id.error());
  std::lock_guard done(done_mu_);
  upload_id_ = *id;
  upload_meta_ = meta;
  return {};
}

Result<void> DirtyFile::ShipPart(uint32_t part, mem::SlotPool::Slot slot, uint64_t length) {
  if (discarded_) return {};  // unlinked: nothing of it will be published
  {
    std::lock_guard done(done_mu_);
    ++in_flight_;
  }
  auto holder = std::make_shared<mem::SlotPool::Slot>(std::move(slot));
  fetch::UploadJob job;
  job.key = key_;
  job.data = std::span<const std::byte>(holder->data(), length);
  job.upload_id = upload_id_;
  job.part_number = part;
  ctx_->uploader->Upload(std::move(job), [this, holder, part](Result<std::string> r) {
    holder->Reset();  // the buffer is free as soon as the server has the part
    {
      std::lock_guard done(done_mu_);
      if (r)
        parts_[part] = *r;
      else if (!error_)  // EIO to the writer, whatever the server said (the log says what)
        error_ = Error(Errc::kIo,
                       "part " + std::to_string(part) + " of '" + key_ +
                           "' was refused: " + r.error().ToString(),
                       r.error().http_status);
      --in_flight_;
    }
    done_cv_.notify_all();
  });
  return {};
}

Result<void> DirtyFile::WaitInFlight() {
  std::unique_lock done(done_mu_);
  done_cv_.wait(done, [this] { return in_flight_ == 0; });
  if (error_) return tl::unexpected(*error_);
  return {};
}

void DirtyFile::AbortUpload() {
  std::string id;
  {
    std::lock_guard done(done_mu_);
    id.swap(upload_id_);
    parts_.clear();
  }
  if (id.empty()) return;
  if (auto r = ctx_->store->AbortUpload(key_, id); !r)
    LOG_WARN(
        "abort of the upload of '%s' failed (its parts stay until the server expires them): "
        "%s",
        key_.c_str(), r.error().ToString().c_str());
}

Result<CommitResult> DirtyFile::StreamCommit(const s3::Metadata& meta) {
  if (upload_id_.empty() && size_ <= P()) {  // one PUT
    fetch::UploadJob job;
    job.key = key_;
    job.meta = meta;
    if (head_) job.data = std::span<const std::byte>(head_.data(), size_);
    auto etag = UploadNow(ctx_->uploader, std::move(job));
    if (!etag) {
      std::lock_guard done(done_mu_);
      error_ = etag.error();
      return tl::unexpected(etag.error());
    }
    CommitResult out{*etag, size_};
    Reset();
    base_etag_ = out.etag;
    return out;
  }
  Result<void> shipped = EnsureUpload(meta);
  if (shipped && cur_ && size_ > (cur_part_ - 1) * P())
    shipped = ShipPart(cur_part_, std::move(cur_), size_ - (cur_part_ - 1) * P());
  if (shipped && head_) shipped = ShipPart(1, std::move(head_), P());
  Result<void> sent = shipped ? WaitInFlight() : shipped;
  if (!sent) {
    (void)WaitInFlight();
    AbortUpload();
    std::lock_guard done(done_mu_);
    error_ = sent.error();  // the parts are gone with the upload: this file cannot be saved now
    return tl::unexpected(sent.error());
  }
  std::vector<s3::CompletedPart> parts;
  {
    std::lock_guard done(done_mu_);
    for (auto& [n, etag] : parts_) parts.push_back({n, etag});
  }
  auto etag = ctx_->store->CompleteUpload(key_, upload_id_, parts);
  if (!etag) {
    AbortUpload();
    std::lock_guard done(done_mu_);
    error_ = etag.error();
    return tl::unexpected(etag.error());
  }
  {
    std::lock_guard done(done_mu_);
    upload_id_.clear();
    parts_.clear();
  }
  CommitResult out{*etag, size_};
  if (upload_meta_ != meta) {  // chmod/utimens while the upload ran: one metadata copy
    auto copied = ctx_->store->Copy(key_, out.etag, key_, &meta);
    if (!copied) return tl::unexpected(copied.error());
    out.etag = *copied;
  }
  Reset();
  base_etag_ = out.etag;
  return out;
}

Result<void> DirtyFile::ToStaged() {
  if (auto r = EnsureFile(); !r) return r;
  if (auto r = ctx_->staging->Charge(size_); !r) return r;
  charged_ += size_;
  if (head_)
    if (auto r = PwriteAll(fd_, head_.data(), std::min(size_, P()), 0); !r) return r;
  if (cur_ && size_ > P())
    if (auto r = PwriteAll(fd_, cur_.data(), size_ - (cur_part_ - 1) * P(), (cur_part_ - 1) * P());
        !r)
      return r;
  local_.Add(0, size_);
  head_.Reset();
  cur_.Reset();
  mode_ = Mode::kStaged;
  has_base_ = false;
  base_limit_ = 0;
  return {};
}

// ---- staged ----

Result<void> DirtyFile::EnsureFile() {
  if (fd_ >= 0) return {};
  auto fd = ctx_->staging->NewFile();
  if (!fd) return tl::unexpected(fd.error());
  fd_ = *fd;
  if (size_ > 0 && ftruncate(fd_, static_cast<off_t>(size_)) != 0)
    return MakeError(Errc::kDiskFull, std::string("staging file: ") + strerror(errno));
  return {};
}

Result<void> DirtyFile::StagedWrite(uint64_t offset, std::span<const std::byte> data) {
  if (auto r = EnsureFile(); !r) return r;
  const uint64_t end = offset + data.size();
  const uint64_t added = (end - offset) - local_.Covered(offset, end);
  if (auto r = ctx_->staging->Charge(added); !r) return r;
  if (auto r = PwriteAll(fd_, data.data(), data.size(), offset); !r) {
    ctx_->staging->Release(added);
    return r;
  }
  local_.Add(offset, end);
  charged_ += added;
  size_ = std::max(size_, end);
  return {};
}

Result<void> DirtyFile::Materialize(uint64_t a, uint64_t b) {
  b = std::min(b, base_limit_);
  if (!has_base_ || a >= b) return {};
  if (auto r = EnsureFile(); !r) return r;
  std::vector<std::byte> buf;
  for (auto [ga, gb] : local_.Gaps(a, b)) {
    for (uint64_t at = ga; at < gb;) {
      uint64_t n = std::min(gb - at, kFetchChunk);
      if (auto r = ctx_->staging->Charge(n); !r) return r;
      buf.resize(n);
      s3::GetRequest get;
      get.key = key_;
      get.offset = at;
      get.length = n;
      get.if_match = base_etag_;
      get.into.emplace_back(buf.data(), n);
      auto got = ctx_->store->Get(std::move(get));
      Result<void> w = got ? PwriteAll(fd_, buf.data(), n, at) : Result<void>();
      if (!got || !w) {
        ctx_->staging->Release(n);
        if (!got) {
          if (got.error().code == Errc::kPreconditionFailed)
            return MakeError(Errc::kPreconditionFailed,
                             "'" + key_ + "' changed on the server while open for writing");
          return tl::unexpected(got.error());
        }
        return w;
      }
      local_.Add(at, at + n);
      charged_ += n;
      at += n;
    }
  }
  return {};
}

Result<void> DirtyFile::Truncate(uint64_t n) {
  std::lock_guard lock(mu_);
  if (n > ctx_->max_file_size)
    return MakeError(Errc::kTooBig, "'" + key_ + "' would pass write.max_file_size");
  {
    std::lock_guard done(done_mu_);
    if (error_) return tl::unexpected(*error_);
  }
  if (mode_ == Mode::kStreaming) {
    if (n == size_) return {};
    dirty_ = true;
    if (n > size_) return StreamWrite(n, {});  // zeros up to n
    bool nothing_sent;
    {
      std::lock_guard done(done_mu_);
      nothing_sent = upload_id_.empty() && in_flight_ == 0 && parts_.empty();
    }
    if (!nothing_sent)
      return MakeError(Errc::kNotSupported,
                       "'" + key_ + "': cannot shrink a file whose first parts were uploaded");
    if (n == 0) {
      head_.Reset();
      cur_.Reset();
      size_ = 0;
      return {};
    }
    if (auto r = ToStaged(); !r) return r;
  }
  dirty_ = true;
  if (n < size_) {
    uint64_t removed = local_.TruncateAt(n);
    charged_ -= removed;
    ctx_->staging->Release(removed);
    base_limit_ = std::min(base_limit_, n);
  }
  if (fd_ >= 0 && ftruncate(fd_, static_cast<off_t>(n)) != 0)
    return MakeError(Errc::kDiskFull, std::string("staging file: ") + strerror(errno));
  size_ = n;
  return {};
}

Result<size_t> DirtyFile::Read(uint64_t offset, std::span<std::byte> out) {
  std::lock_guard lock(mu_);
  if (offset >= size_) return 0;
  const uint64_t n = std::min<uint64_t>(out.size(), size_ - offset);
  if (mode_ == Mode::kStreaming) {
    for (uint64_t at = offset; at < offset + n;) {
      uint64_t part = at / P() + 1;
      uint64_t part_end = std::min(offset + n, part * P());
      const mem::SlotPool::Slot* slot = part == 1 ? &head_ : (part == cur_part_ ? &cur_ : nullptr);
      if (!slot || !*slot)
        return MakeError(Errc::kNotSupported, "'" + key_ +
                                                  "': these bytes were already uploaded by a "
                                                  "writer still running; read them after close");
      memcpy(out.data() + (at - offset), slot->data() + (at - (part - 1) * P()), part_end - at);
      at = part_end;
    }
    return n;
  }
  if (auto r = EnsureFile(); !r) return tl::unexpected(r.error());
  if (auto r = Materialize(offset, offset + n); !r) return tl::unexpected(r.error());
  if (auto r = PreadAll(fd_, out.data(), n, offset); !r) return tl::unexpected(r.error());
  return n;
}

Result<void> DirtyFile::UploadFromFile(uint32_t part, uint64_t a, uint64_t b) {
  if (auto r = Materialize(a, b); !r) return r;
  mem::SlotPool::Slot slot = ctx_->buffers->Acquire(ctx_->buffer_wait);
  if (!slot)
    return MakeError(Errc::kNoSpace, "no write buffer came free in time (write.buffer_memory)");
  if (auto r = PreadAll(fd_, slot.data(), b - a, a); !r) return r;
  return ShipPart(part, std::move(slot), b - a);
}

Result<CommitResult> DirtyFile::StagedCommit(const s3::Metadata& meta) {
  if (auto r = EnsureFile(); !r) return tl::unexpected(r.error());
  auto fail = [this](const Error& e) -> Result<CommitResult> {
    (void)WaitInFlight();
    AbortUpload();
    std::lock_guard done(done_mu_);
    error_.reset();  // the staged bytes are intact: a later flush may try again
    return tl::unexpected(e);
  };
  if (size_ <= P()) {
    if (auto r = Materialize(0, size_); !r) return fail(r.error());
    mem::SlotPool::Slot slot = ctx_->buffers->Acquire(ctx_->buffer_wait);
    if (!slot)
      return fail(Error(Errc::kNoSpace, "no write buffer came free in time (write.buffer_memory)"));
    if (auto r = PreadAll(fd_, slot.data(), size_, 0); !r) return fail(r.error());
    fetch::UploadJob job;
    job.key = key_;
    job.meta = meta;
    job.data = std::span<const std::byte>(slot.data(), size_);
    auto etag = UploadNow(ctx_->uploader, std::move(job));
    if (!etag) return fail(etag.error());
    CommitResult out{*etag, size_};
    Reset();
    base_etag_ = out.etag;
    return out;
  }
  if (auto r = EnsureUpload(meta); !r) return fail(r.error());
  const uint32_t parts = static_cast<uint32_t>((size_ + P() - 1) / P());
  uint64_t copied = 0;
  for (uint32_t n = 1; n <= parts; ++n) {
    uint64_t a = (n - 1) * P(), b = std::min(size_, n * P());
    bool unchanged = has_base_ && b <= base_limit_ && local_.Covered(a, b) == 0 &&
                     (b - a >= kMinPart || n == parts);
    if (unchanged) {  // the server copies it from the old object: no bytes travel
      {
        std::lock_guard done(done_mu_);
        ++in_flight_;
      }
      s3::CopyPartRequest req;
      req.key = key_;
      req.upload_id = upload_id_;
      req.part_number = n;
      req.source_key = key_;
      req.source_if_match = base_etag_;
      req.offset = a;
      req.length = b - a;
      copied += b - a;
      ctx_->store->CopyPartAsync(req, [this, n](Result<std::string> r) {
        {
          std::lock_guard done(done_mu_);
          if (r)
            parts_[n] = *r;
          else if (!error_)
            error_ = r.error();
          --in_flight_;
        }
        done_cv_.notify_all();
      });
      continue;
    }
    if (auto r = UploadFromFile(n, a, b); !r) return fail(r.error());
    std::lock_guard done(done_mu_);
    if (error_) break;
  }
  if (auto r = WaitInFlight(); !r) return fail(r.error());
  std::vector<s3::CompletedPart> list;
  {
    std::lock_guard done(done_mu_);
    for (auto& [n, etag] : parts_) list.push_back({n, etag});
  }
  auto etag = ctx_->store->CompleteUpload(key_, upload_id_, list);
  if (!etag) return fail(etag.error());
  {
    std::lock_guard done(done_mu_);
    upload_id_.clear();
    parts_.clear();
  }
  if (copied)
    LOG_DEBUG("commit '%s': %llu of %llu bytes carried over by UploadPartCopy", key_.c_str(),
              static_cast<unsigned long long>(copied), static_cast<unsigned long long>(size_));
  CommitResult out{*etag, size_};
  Reset();
  base_etag_ = out.etag;
  return out;
}

void DirtyFile::Reset() {
  head_.Reset();
  cur_.Reset();
  cur_part_ = 2;
  if (mode_ == Mode::kStreaming) {
    local_.clear();  // nothing staged: reads go to the new object
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    ctx_->staging->Release(charged_);
    charged_ = 0;
  }
  mode_ = Mode::kStaged;
  has_base_ = true;
  base_limit_ = size_;
  dirty_ = false;
}

Result<CommitResult> DirtyFile::Commit(const s3::Metadata& meta) {
  std::lock_guard lock(mu_);
  if (discarded_) return MakeError(Errc::kNotFound, "'" + key_ + "' was unlinked");
  if (!dirty_) return CommitResult{base_etag_, size_};
  {
    std::lock_guard done(done_mu_);
    if (error_) return tl::unexpected(*error_);
  }
  return mode_ == Mode::kStreaming ? StreamCommit(meta) : StagedCommit(meta);
}

void DirtyFile::SetMeta(s3::Metadata meta) {
  std::lock_guard lock(mu_);
  meta_ = std::move(meta);
}

void DirtyFile::Rekey(std::string key, std::string etag) {
  std::lock_guard lock(mu_);
  key_ = std::move(key);
  base_etag_ = std::move(etag);
}

void DirtyFile::Discard() {
  std::lock_guard lock(mu_);
  discarded_ = true;
  (void)WaitInFlight();
  AbortUpload();
}

}  // namespace s3rdmafs::fs
