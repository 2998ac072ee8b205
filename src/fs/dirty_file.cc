// DirtyFile: the staged bytes and the writes (the commit is in
// dirty_file_commit.cc). See dirty_file.h for the model.
#include "dirty_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/common/log.h"
#include "staged_io.h"

namespace s3rdmafs::fs {
namespace {
constexpr uint64_t kFetchChunk = 8ull << 20;  // base bytes fetched per GET
}  // namespace

DirtyFile::DirtyFile(WriteContext* ctx, std::string key) : ctx_(ctx), key_(std::move(key)) {
  dirty_ = true;
}

DirtyFile::DirtyFile(WriteContext* ctx, std::string key, std::string etag, uint64_t size)
    : ctx_(ctx),
      key_(std::move(key)),
      has_base_(true),
      base_etag_(std::move(etag)),
      base_limit_(size) {
  size_ = size;
}

DirtyFile::~DirtyFile() {
  (void)WaitInFlight();
  AbortUpload();
  if (fd_ >= 0) close(fd_);
  ctx_->staging->Release(charged_);
}

uint32_t DirtyFile::Parts() const {
  return static_cast<uint32_t>(std::max<uint64_t>(1, (size_ + P() - 1) / P()));
}

std::pair<uint64_t, uint64_t> DirtyFile::Range(uint32_t part) const {
  return {(part - 1) * P(), std::min<uint64_t>(size_, part * P())};
}

uint64_t& DirtyFile::Generation(uint32_t part) {
  if (touched_.size() < part) touched_.resize(part, 0);
  return touched_[part - 1];
}

void DirtyFile::Touch(uint64_t a, uint64_t b) {
  if (a >= b) return;
  ++generation_;
  for (uint32_t n = static_cast<uint32_t>(a / P() + 1); n <= (b - 1) / P() + 1; ++n)
    Generation(n) = generation_;
}

bool DirtyFile::Current(uint32_t part) {
  const uint64_t g = Generation(part);
  std::lock_guard done(done_mu_);
  auto it = sent_.find(part);
  return it != sent_.end() && it->second.generation == g && !sending_.count(part);
}

bool DirtyFile::Copyable(uint32_t part, uint32_t parts) const {
  constexpr uint64_t kMinPart = 5ull << 20;  // S3: every part but the last
  auto [a, b] = Range(part);
  return has_base_ && b <= base_limit_ && touched_.size() >= part && touched_[part - 1] == 0 &&
         (b - a >= kMinPart || part == parts) && b > a;
}

Result<void> DirtyFile::Write(uint64_t offset, std::span<const std::byte> data) {
  std::lock_guard lock(mu_);
  if (data.empty()) return {};
  if (offset + data.size() > ctx_->max_file_size)
    return MakeError(Errc::kTooBig, "'" + key_ + "' would pass write.max_file_size (" +
                                        std::to_string(ctx_->max_file_size >> 20) + " MiB)");
  const uint64_t end = offset + data.size();
  if (auto r = CheckKept(offset, end, "write"); !r) return r;
  if (auto r = StagedWrite(offset, data); !r) return r;
  dirty_ = true;
  close_failed_ = false;
  if (ctx_->streaming) ShipPassedParts(offset, end);
  return {};
}

Result<void> DirtyFile::EnsureFile() {
  if (fd_ >= 0) return {};
  auto fd = ctx_->staging->NewFile();
  if (!fd) return tl::unexpected(fd.error());
  fd_ = *fd;
  return {};
}

Result<void> DirtyFile::Charge(uint64_t bytes) {
  if (bytes == 0) return {};
  auto r = ctx_->staging->Charge(bytes);
  if (!r) {
    Reclaim();
    r = ctx_->staging->Charge(bytes);
    if (!r) return r;
  }
  charged_ += bytes;
  return {};
}

// The staging bound is reached: the parts the server already holds (in the
// upload, current) need not stay here as well. Part 1 stays for header patches.
void DirtyFile::Reclaim() {
  (void)WaitInFlight();  // what is in flight may become current
  uint64_t freed = 0;
  for (uint32_t n = 2; n <= Parts(); ++n) {
    auto [a, b] = Range(n);
    if (b - a != P() || local_.Covered(a, b) != P() || !Current(n)) continue;
    if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(a),
                  static_cast<off_t>(b - a)) != 0)
      break;  // the file system cannot punch holes: nothing to gain
    freed += local_.Remove(a, b);
    dropped_.Add(a, b);
  }
  if (freed) {
    charged_ -= freed;
    ctx_->staging->Release(freed);
    LOG_INFO("'%s': %llu MiB already uploaded dropped from staging (write.staging_max)",
             key_.c_str(), static_cast<unsigned long long>(freed >> 20));
  }
}

Result<void> DirtyFile::CheckKept(uint64_t a, uint64_t b, const char* what) const {
  if (dropped_.Covered(a, b) == 0) return {};
  return MakeError(Errc::kDiskFull,
                   std::string(what) + " of '" + key_ + "' at " + std::to_string(a) +
                       ": these bytes were uploaded and dropped from the full staging area "
                       "(raise write.staging_max); they are saved with the file at close");
}

Result<void> DirtyFile::StagedWrite(uint64_t offset, std::span<const std::byte> data) {
  if (auto r = EnsureFile(); !r) return r;
  const uint64_t end = offset + data.size();
  const uint64_t added = (end - offset) - local_.Covered(offset, end);
  if (auto r = Charge(added); !r) return r;
  if (auto r = PwriteAll(fd_, data.data(), data.size(), offset); !r) {
    charged_ -= added;
    ctx_->staging->Release(added);
    return r;
  }
  local_.Add(offset, end);
  if (offset > size_) Touch(size_, offset);  // a hole of zeros
  Touch(offset, end);
  size_ = std::max<uint64_t>(size_, end);
  return {};
}

// Parts this write finished and moved past go out now, while the writer goes
// on (a writer that comes back into one later just makes it stale).
void DirtyFile::ShipPassedParts(uint64_t a, uint64_t b) {
  const uint64_t size = size_;
  for (uint32_t n = static_cast<uint32_t>(a / P() + 1); n * P() <= b; ++n) {
    if (n < 2 || n * P() > size || Current(n)) continue;
    auto [x, y] = Range(n);
    if (local_.Covered(x, y) != P()) continue;  // base bytes: the commit copies or fetches
    {
      std::lock_guard done(done_mu_);
      if (sending_.count(n)) continue;  // the commit sends it again if it changed
    }
    if (!EnsureUpload(meta_)) return;  // the commit tries again and reports it
    (void)ShipFromFile(n, ctx_->buffer_wait);
  }
}

Result<void> DirtyFile::Materialize(uint64_t a, uint64_t b) {
  b = std::min(b, base_limit_);
  if (!has_base_ || a >= b) return {};
  if (auto r = EnsureFile(); !r) return r;
  std::vector<std::byte> buf;
  for (auto [ga, gb] : local_.Gaps(a, b)) {
    for (uint64_t at = ga; at < gb;) {
      uint64_t n = std::min(gb - at, kFetchChunk);
      if (auto r = Charge(n); !r) return r;
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
        charged_ -= n;
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
      at += n;
    }
  }
  return {};
}

Result<void> DirtyFile::Truncate(uint64_t n) {
  std::lock_guard lock(mu_);
  if (n > ctx_->max_file_size)
    return MakeError(Errc::kTooBig, "'" + key_ + "' would pass write.max_file_size");
  const uint64_t size = size_;
  if (n == size) return {};
  if (n < size) {
    const uint64_t part_start = n / P() * P();
    if (n % P() != 0 && dropped_.Covered(part_start, n))
      return CheckKept(part_start, n, "truncate");  // that part cannot be rebuilt
    dropped_.TruncateAt(n);
    uint64_t removed = local_.TruncateAt(n);
    charged_ -= removed;
    ctx_->staging->Release(removed);
    base_limit_ = std::min(base_limit_, n);
    if (fd_ >= 0 && ftruncate(fd_, static_cast<off_t>(n)) != 0)
      return MakeError(Errc::kDiskFull, std::string("staging file: ") + ErrnoText(errno));
    if (n % P() != 0) Touch(n - 1, n);  // the new last part is shorter
  } else {
    Touch(size, n);  // zeros: a hole of the staging file
  }
  size_ = n;
  dirty_ = true;
  close_failed_ = false;
  return {};
}

Result<size_t> DirtyFile::Read(uint64_t offset, std::span<std::byte> out) {
  std::lock_guard lock(mu_);
  const uint64_t size = size_;
  if (offset >= size) return 0;
  const uint64_t n = std::min<uint64_t>(out.size(), size - offset);
  if (auto r = CheckKept(offset, offset + n, "read"); !r) return tl::unexpected(r.error());
  if (auto r = EnsureFile(); !r) return tl::unexpected(r.error());
  if (auto r = Materialize(offset, offset + n); !r) return tl::unexpected(r.error());
  if (auto r = PreadAll(fd_, out.data(), n, offset); !r) return tl::unexpected(r.error());
  return n;
}

void DirtyFile::SetMeta(s3::Metadata meta) {
  std::lock_guard lock(mu_);
  meta_ = std::move(meta);
}

void DirtyFile::SetCondition(s3::WriteCondition condition) {
  std::lock_guard lock(mu_);
  condition_ = std::move(condition);
}

void DirtyFile::Rekey(std::string key, std::string etag) {
  std::lock_guard lock(mu_);
  key_ = std::move(key);
  base_etag_ = std::move(etag);
  if (!condition_.if_match.empty()) condition_.if_match = base_etag_;
}

void DirtyFile::Discard() {
  std::lock_guard lock(mu_);
  discarded_ = true;
  (void)WaitInFlight();
  AbortUpload();
}

}  // namespace s3rdmafs::fs
