// DirtyFile: the write state of one file (one per inode, shared by all its
// open handles) from the first open for writing until the last close.
//
// One state machine for every write pattern. The file's bytes live in an
// anonymous file in the staging area: `local_` says which bytes are there;
// bytes of the old object (the base) below `base_limit_` are fetched only
// when a read or an upload needs them. The object on the server does not
// change until a commit succeeds.
//
// Parts: the file is cut into parts of the write part size. Every change to
// a part bumps its generation (`touched_`). A part the writer has moved past
// - full, all its bytes local, from the second part on - is uploaded at once
// (UploadPart, RDMA READ by the server where the transport has it), so an
// in-order writer streams while it writes; the upload records the generation
// it carried. A later write into that part (a header patch, HDF5's index)
// just makes it stale: the commit sends it again. Part 1 waits for the commit,
// where header patches land.
//
// Commit (flush/fsync/close) publishes the whole file as one object: a single
// PUT up to one part, else one multipart upload: parts still current are
// kept, untouched parts of the base are copied on the server
// (UploadPartCopy), the rest are sent from the staging file, then
// CompleteMultipartUpload. A lost reply to Complete is checked with a HEAD
// (the multipart ETag is computed from the parts). A failed commit changes
// nothing on the server and keeps every byte staged, so a later flush can try
// again; the upload is aborted when the write state goes away unsaved.
//
// The staging bound: when it is reached, this file's parts that the server
// already holds (current, never part 1) are dropped from the staging file.
// A later write or read of dropped bytes fails with ENOSPC naming
// write.staging_max; everything else keeps working.
//
// Thread-safety: all methods may be called from any thread. `mu_` serializes
// a file's operations (they may wait on the network); size(), dirty() and
// discarded() are lock-free, so stat and lookup never wait for a commit.
// Upload completions only take `done_mu_`, never held across I/O.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "extent_set.h"
#include "s3rdmafs/common/result.h"
#include "s3rdmafs/fetch/part_uploader.h"
#include "s3rdmafs/mem/slot_pool.h"
#include "s3rdmafs/s3/object_store.h"
#include "staging.h"
#include "upload_journal.h"

namespace s3rdmafs::fs {

// What every DirtyFile of a mount shares.
struct WriteContext {
  s3::ObjectStore* store = nullptr;
  fetch::PartUploader* uploader = nullptr;
  mem::SlotPool* buffers = nullptr;  // slots of write part size
  StagingArea* staging = nullptr;
  UploadJournal* journal = nullptr;  // optional: uploads a crash would leave behind
  uint64_t max_file_size = 0;
  bool streaming = true;         // upload finished parts while writing (else all at commit)
  bool detect_conflicts = true;  // commits carry If-Match (write.conflict = "detect")
  std::chrono::milliseconds buffer_wait{60000};
  uint64_t part_size() const { return buffers->slot_size(); }
};

struct CommitResult {
  std::string etag;
  uint64_t size = 0;
};

class DirtyFile {
 public:
  // A new or truncated file (empty, no base object; dirty: a commit creates it).
  DirtyFile(WriteContext* ctx, std::string key);
  // An existing object of `size` bytes with `etag`, edited in place (clean).
  DirtyFile(WriteContext* ctx, std::string key, std::string etag, uint64_t size);
  ~DirtyFile();
  DirtyFile(const DirtyFile&) = delete;
  DirtyFile& operator=(const DirtyFile&) = delete;

  Result<void> Write(uint64_t offset, std::span<const std::byte> data);
  Result<void> Truncate(uint64_t size);
  // Reads what a reader of this file must see now; short only at end of file.
  Result<size_t> Read(uint64_t offset, std::span<std::byte> out);
  // Publishes the contents under the current key with `meta` (when dirty).
  Result<CommitResult> Commit(const s3::Metadata& meta);
  // The file was unlinked: abort what was started; later commits do nothing.
  void Discard();
  // Metadata for a multipart upload started while writing (commit gets the final one).
  void SetMeta(s3::Metadata meta);
  // What the server must still hold for a commit to replace it (S3
  // conditional writes): the ETag seen at open, or "nothing" for O_EXCL.
  void SetCondition(s3::WriteCondition condition);
  // After a rename (committed first): the object now lives at `key` as `etag`.
  void Rekey(std::string key, std::string etag);

  uint64_t size() const { return size_.load(); }
  bool dirty() const { return dirty_.load(); }
  bool discarded() const { return discarded_.load(); }
  // The opener's close (or fsync) reported that these bytes were not saved:
  // no later release may save them behind its back. A new change clears it.
  void SetCloseFailed(bool failed) { close_failed_ = failed; }
  bool close_failed() const { return close_failed_.load(); }

 private:
  struct Sent {
    std::string etag;
    uint64_t generation = 0;  // of the part's bytes the upload carried
  };

  uint64_t P() const { return ctx_->part_size(); }
  uint32_t Parts() const;  // of the file as it is now
  std::pair<uint64_t, uint64_t> Range(uint32_t part) const;
  void Touch(uint64_t a, uint64_t b);  // parts overlapping [a, b) changed
  uint64_t& Generation(uint32_t part);
  bool Current(uint32_t part);  // the upload holds this part's bytes as they are now
  bool Copyable(uint32_t part, uint32_t parts) const;  // unchanged base bytes

  // Staged bytes (dirty_file.cc).
  Result<void> EnsureFile();
  Result<void> Charge(uint64_t bytes);  // reclaims dropped-able parts when full
  void Reclaim();
  Result<void> CheckKept(uint64_t a, uint64_t b, const char* what) const;
  Result<void> Materialize(uint64_t a, uint64_t b);  // base bytes of [a,b) into the file
  Result<void> StagedWrite(uint64_t offset, std::span<const std::byte> data);
  void ShipPassedParts(uint64_t a, uint64_t b);

  // Uploads and the commit (dirty_file_commit.cc).
  Result<void> EnsureUpload(const s3::Metadata& meta);
  Result<void> ShipFromFile(uint32_t part, std::chrono::milliseconds wait);
  void CopyFromBase(uint32_t part);
  void Answered(uint32_t part, uint64_t generation, Result<std::string> r);
  Result<void> WaitInFlight();  // every sent part answered; the first error of the round
  void AbortUpload();
  Result<CommitResult> CommitSingle(const s3::Metadata& meta);
  Result<CommitResult> CommitMultipart(const s3::Metadata& meta);
  Result<std::string> Complete(const std::vector<s3::CompletedPart>& parts);
  CommitResult Published(std::string etag);  // the new object is the base now
  Error Conflict(const Error& e) const;      // a failed condition, said for the user

  WriteContext* const ctx_;
  mutable std::mutex mu_;  // serializes the file's operations
  std::string key_;
  std::atomic<uint64_t> size_{0};
  std::atomic<bool> dirty_{false};
  std::atomic<bool> discarded_{false};
  std::atomic<bool> close_failed_{false};
  s3::Metadata meta_;  // for an upload started while writing
  s3::WriteCondition condition_;
  // Staged bytes.
  int fd_ = -1;
  ExtentSet local_;    // bytes the staging file holds
  ExtentSet dropped_;  // bytes dropped under the staging bound (the upload holds them)
  uint64_t charged_ = 0;
  bool has_base_ = false;
  std::string base_etag_;
  uint64_t base_limit_ = 0;  // base bytes below this are still part of the file
  // Parts.
  std::vector<uint64_t> touched_;  // generation of each part's last change (0: as the base)
  uint64_t generation_ = 0;
  std::string upload_id_;
  s3::Metadata upload_meta_;

  // Completion state (guarded by done_mu_, never held across I/O).
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  uint32_t in_flight_ = 0;
  std::set<uint32_t> sending_;     // parts with an upload in flight
  std::map<uint32_t, Sent> sent_;  // parts the upload holds
  std::optional<Error> error_;     // the first failure since the last WaitInFlight
};

}  // namespace s3rdmafs::fs
