// DirtyFile: part uploads and the commit. See dirty_file.h for the model.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dirty_file.h"
#include "s3rdmafs/common/log.h"
#include "s3rdmafs/s3/sigv4.h"
#include "staged_io.h"

namespace s3rdmafs::fs {
namespace {

// A part on its way holds a write buffer until the server has it.
struct InFlightPart {
  mem::SlotPool::Slot slot;
};

}  // namespace

Result<void> DirtyFile::EnsureUpload(const s3::Metadata& meta) {
  if (!upload_id_.empty()) return {};
  auto id = ctx_->store->CreateUpload(key_, meta);
  if (!id) return tl::unexpected(id.error());
  upload_id_ = *id;
  upload_meta_ = meta;
  if (ctx_->journal) ctx_->journal->Begin(key_, upload_id_);
  return {};
}

void DirtyFile::Answered(uint32_t part, uint64_t generation, Result<std::string> r) {
  // Notified under the lock: the waiter may destroy this object as soon as
  // it sees in_flight_ reach 0.
  std::lock_guard done(done_mu_);
  sending_.erase(part);
  if (r) {
    sent_[part] = Sent{*r, generation};
  } else {
    sent_.erase(part);
    if (!error_)
      error_ = Error(r.error().code,
                     "part " + std::to_string(part) + " of '" + key_ +
                         "' was refused: " + r.error().ToString(),
                     r.error().http_status);
  }
  --in_flight_;
  done_cv_.notify_all();
}

Result<void> DirtyFile::ShipFromFile(uint32_t part, std::chrono::milliseconds wait) {
  if (discarded_) return {};  // unlinked: nothing of it will be published
  auto [a, b] = Range(part);
  if (auto r = Materialize(a, b); !r) return r;
  // A write buffer is the credit for one part in flight (it bounds what
  // uploads hold), and holds the bytes when the transport needs registered
  // memory. HTTP reads the part from the staging file as it sends: no copy
  // of its own (a mapping of the file instead cost more than the copy it
  // saved: mmap/munmap beside the writer's pwrites halved sequential write
  // speed). A write landing during the send makes the part stale: resent.
  mem::SlotPool::Slot slot = ctx_->buffers->Acquire(wait);
  if (!slot)
    return MakeError(Errc::kTimedOut, "no write buffer came free in time (write.buffer_memory)");
  auto holder = std::make_shared<InFlightPart>();
  holder->slot = std::move(slot);
  fetch::UploadJob job;
  if (ctx_->uploader->needs_registered_memory()) {
    if (auto r = PreadAll(fd_, holder->slot.data(), b - a, a); !r) return r;
    job.data = std::span<const std::byte>(holder->slot.data(), b - a);
  } else {
    job.file = s3::FileRegion{fd_, a, b - a};
  }
  const uint64_t generation = Generation(part);
  {
    std::lock_guard done(done_mu_);
    ++in_flight_;
    sending_.insert(part);
  }
  job.key = key_;
  job.upload_id = upload_id_;
  job.part_number = part;
  ctx_->uploader->Upload(std::move(job), [this, holder, part, generation](Result<std::string> r) {
    holder->slot.Reset();  // the buffer is free as soon as the server has the part
    Answered(part, generation, std::move(r));
  });
  return {};
}

void DirtyFile::CopyFromBase(uint32_t part) {
  auto [a, b] = Range(part);
  {
    std::lock_guard done(done_mu_);
    ++in_flight_;
    sending_.insert(part);
  }
  s3::CopyPartRequest req;
  req.key = key_;
  req.upload_id = upload_id_;
  req.part_number = part;
  req.source_key = key_;
  req.source_if_match = base_etag_;
  req.offset = a;
  req.length = b - a;
  ctx_->store->CopyPartAsync(
      req, [this, part](Result<std::string> r) { Answered(part, 0, std::move(r)); });
}

Result<void> DirtyFile::WaitInFlight() {
  std::unique_lock done(done_mu_);
  done_cv_.wait(done, [this] { return in_flight_ == 0; });
  std::optional<Error> e;
  e.swap(error_);
  if (e) return tl::unexpected(*e);
  return {};
}

void DirtyFile::AbortUpload() {
  std::string id;
  id.swap(upload_id_);
  {
    std::lock_guard done(done_mu_);
    sent_.clear();
  }
  if (id.empty()) return;
  auto r = ctx_->store->AbortUpload(key_, id);
  if ((r || r.error().code == Errc::kNoSuchUpload) && ctx_->journal) ctx_->journal->End(id);
  if (!r && r.error().code != Errc::kNoSuchUpload)
    LOG_WARN(
        "abort of the upload of '%s' failed (its parts stay until the server expires them): "
        "%s",
        key_.c_str(), r.error().ToString().c_str());
}

Result<CommitResult> DirtyFile::Commit(const s3::Metadata& meta) {
  std::lock_guard lock(mu_);
  if (discarded_) return MakeError(Errc::kNotFound, "'" + key_ + "' was unlinked");
  if (!dirty_) return CommitResult{base_etag_, size_};
  return size_ <= P() ? CommitSingle(meta) : CommitMultipart(meta);
}

Result<CommitResult> DirtyFile::CommitSingle(const s3::Metadata& meta) {
  (void)WaitInFlight();
  if (!upload_id_.empty()) AbortUpload();  // it grew past a part, then shrank
  const uint64_t size = size_;
  if (auto r = EnsureFile(); !r) return tl::unexpected(r.error());
  if (auto r = Materialize(0, size); !r) return tl::unexpected(r.error());
  mem::SlotPool::Slot slot = ctx_->buffers->Acquire(ctx_->buffer_wait);
  if (!slot)
    return MakeError(Errc::kTimedOut, "no write buffer came free in time (write.buffer_memory)");
  if (auto r = PreadAll(fd_, slot.data(), size, 0); !r) return tl::unexpected(r.error());
  fetch::UploadJob job;
  job.key = key_;
  job.meta = meta;
  job.data = std::span<const std::byte>(slot.data(), size);
  job.condition = condition_;
  auto etag = UploadNow(ctx_->uploader, std::move(job));
  if (!etag && etag.error().code == Errc::kPreconditionFailed) {
    // A retry after a lost reply finds our own object there: its ETag is
    // the MD5 of these bytes.
    auto head = ctx_->store->Head(key_);
    if (head && head->size == size &&
        s3::BareEtag(head->etag) ==
            s3::Md5Hex(std::string_view(reinterpret_cast<const char*>(slot.data()), size))) {
      LOG_INFO("'%s': the reply to PutObject was lost; the object is ours", key_.c_str());
      return Published(head->etag);
    }
    return tl::unexpected(Conflict(etag.error()));
  }
  if (!etag) return tl::unexpected(etag.error());
  return Published(*etag);
}

Result<CommitResult> DirtyFile::CommitMultipart(const s3::Metadata& meta) {
  for (int attempt = 0;; ++attempt) {
    if (auto r = EnsureUpload(meta); !r) return tl::unexpected(r.error());
    // What went out while writing: a refused part is sent again below, but
    // an upload that is gone must be started over.
    Result<void> sent = WaitInFlight();
    if (!sent && sent.error().code != Errc::kNoSuchUpload) sent = {};
    const uint32_t parts = Parts();
    for (uint32_t n = 1; n <= parts && sent; ++n) {
      if (Current(n)) continue;
      if (Copyable(n, parts))
        CopyFromBase(n);  // the server copies it from the old object: no bytes travel
      else
        sent = ShipFromFile(n, ctx_->buffer_wait);
    }
    Result<void> answered = WaitInFlight();
    if (sent) sent = answered;
    if (!sent && sent.error().code == Errc::kNoSuchUpload && attempt == 0 &&
        dropped_.bytes() == 0) {
      // The upload is gone (aborted or expired behind our back): every byte
      // is still staged, so start over once with a new one.
      LOG_WARN("'%s': the upload vanished on the server; sending the file again", key_.c_str());
      if (ctx_->journal) ctx_->journal->End(upload_id_);
      upload_id_.clear();
      std::lock_guard done(done_mu_);
      sent_.clear();
      continue;
    }
    if (!sent) return tl::unexpected(sent.error());
    break;
  }
  std::vector<s3::CompletedPart> list;
  {
    std::lock_guard done(done_mu_);
    for (uint32_t n = 1; n <= Parts(); ++n) {
      auto it = sent_.find(n);
      if (it == sent_.end())
        return MakeError(Errc::kInternal, "part " + std::to_string(n) + " of '" + key_ +
                                              "' is missing from its upload");
      list.push_back({n, it->second.etag});
    }
  }
  auto etag = Complete(list);
  if (!etag) return tl::unexpected(etag.error());
  std::string final_etag = *etag;
  if (upload_meta_ != meta) {  // chmod/utimens while the upload ran: one metadata copy
    auto copied = ctx_->store->Copy(key_, final_etag, key_, &meta);
    if (!copied) {
      CommitResult out = Published(final_etag);
      LOG_WARN("'%s' saved, but its new attributes were not: %s", key_.c_str(),
               copied.error().ToString().c_str());
      return out;
    }
    final_etag = *copied;
  }
  return Published(final_etag);
}

Result<std::string> DirtyFile::Complete(const std::vector<s3::CompletedPart>& parts) {
  auto etag = ctx_->store->CompleteUpload(key_, upload_id_, parts, condition_);
  if (!etag && etag.error().code == Errc::kPreconditionFailed)
    return tl::unexpected(Conflict(etag.error()));
  if (!etag && etag.error().code == Errc::kNoSuchUpload) {
    // A retry after a lost reply finds the upload completed: it is ours if
    // the object now has exactly the ETag these parts make.
    const std::string want = s3::MultipartEtag(parts);
    auto head = ctx_->store->Head(key_);
    if (head && !want.empty() && s3::BareEtag(head->etag) == want && head->size == size_) {
      LOG_INFO("'%s': the reply to CompleteMultipartUpload was lost; the object is ours",
               key_.c_str());
      return head->etag;
    }
    if (ctx_->journal) ctx_->journal->End(upload_id_);
    upload_id_.clear();  // nothing to abort: it is gone
    std::lock_guard done(done_mu_);
    sent_.clear();
  }
  return etag;
}

CommitResult DirtyFile::Published(std::string etag) {
  if (!upload_id_.empty() && ctx_->journal) ctx_->journal->End(upload_id_);
  upload_id_.clear();
  {
    std::lock_guard done(done_mu_);
    sent_.clear();
  }
  // The staged bytes equal the new object now; they stay as a local copy.
  dropped_.clear();
  touched_.clear();
  has_base_ = true;
  base_etag_ = std::move(etag);
  base_limit_ = size_;
  dirty_ = false;
  close_failed_ = false;
  if (ctx_->detect_conflicts)
    condition_ = s3::WriteCondition{base_etag_, false};  // ours, until someone else's
  else
    condition_ = {};
  return CommitResult{base_etag_, size_};
}

Error DirtyFile::Conflict(const Error& e) const {
  return Error(condition_.if_none_match ? Errc::kExists : Errc::kPreconditionFailed,
               condition_.if_none_match
                   ? "'" + key_ + "' was created by another client meanwhile (O_EXCL)"
                   : "'" + key_ +
                         "' was changed by another client since it was opened (write.conflict "
                         "= \"overwrite\" lets the last close win): " +
                         e.message,
               e.http_status);
}

}  // namespace s3rdmafs::fs
