// DirtyFile: the write state of one file (one per inode, shared by all its
// open handles) from the first open for writing until the last close.
//
// Two modes:
//  - Streaming (a new or truncated file written in order): bytes go into
//    part-sized slots of registered memory; each full part from the second on
//    is uploaded at once as an UploadPart (RDMA READ by the server when the
//    transport has it), in parallel with the writer. Part 1 stays in memory
//    until commit, so a writer that seeks back to patch a header (zip, tar,
//    HDF5) still works (when buffers run short, part 1 is sent rather than
//    held, so writers never wait on each other). A write into a part already
//    sent is refused
//    (kNotSupported) - unless nothing was sent yet, then the file moves to:
//  - Staged (existing objects edited in place, random writers): bytes go to
//    an anonymous file in the staging area; `local_` says which bytes are
//    there. Bytes of the old object (the base) are fetched only when a read
//    or an upload needs them; on commit, parts that hold no new byte are
//    carried over with UploadPartCopy instead of being sent again.
//
// Commit (flush/fsync/close) publishes the whole file as one object: a single
// PUT up to one part, else CompleteMultipartUpload, so no reader ever sees a
// partial object; a failed commit aborts its upload and reports the error.
// An upload error during writing is sticky: the next write or commit fails.
//
// Thread-safety: all methods may be called from any thread; one mutex
// serializes a file's operations (they may block on the network), and upload
// completions only touch `done_mu_`, so they never wait for a writer.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "extent_set.h"
#include "s3rdmafs/common/result.h"
#include "s3rdmafs/fetch/part_uploader.h"
#include "s3rdmafs/mem/slot_pool.h"
#include "s3rdmafs/s3/object_store.h"
#include "staging.h"

namespace s3rdmafs::fs {

// What every DirtyFile of a mount shares.
struct WriteContext {
  s3::ObjectStore* store = nullptr;
  fetch::PartUploader* uploader = nullptr;
  mem::SlotPool* buffers = nullptr;  // slots of write part size
  StagingArea* staging = nullptr;
  uint64_t max_file_size = 0;
  bool streaming = true;
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
  // Metadata for a multipart upload the writer starts (commit gets the final one).
  void SetMeta(s3::Metadata meta);
  // After a rename (committed first): the object now lives at `key` as `etag`.
  void Rekey(std::string key, std::string etag);

  uint64_t size() const;
  bool dirty() const;
  bool discarded() const;

 private:
  enum class Mode { kStreaming, kStaged };
  uint64_t P() const { return ctx_->part_size(); }

  // Streaming.
  Result<void> StreamWrite(uint64_t offset, std::span<const std::byte> data);
  Result<void> StreamAppend(std::span<const std::byte> data);
  std::byte* StreamSlot(uint32_t part, bool* fall_back, Error* error);
  Result<void> ShipPart(uint32_t part, mem::SlotPool::Slot slot, uint64_t length);
  Result<void> EnsureUpload(const s3::Metadata& meta);
  Result<CommitResult> StreamCommit(const s3::Metadata& meta);
  Result<void> ToStaged();  // lossless only while nothing was sent

  // Staged.
  Result<void> EnsureFile();
  Result<void> Materialize(uint64_t a, uint64_t b);  // base bytes of [a,b) into the file
  Result<void> StagedWrite(uint64_t offset, std::span<const std::byte> data);
  Result<CommitResult> StagedCommit(const s3::Metadata& meta);
  Result<void> UploadFromFile(uint32_t part, uint64_t a, uint64_t b);

  // Upload bookkeeping shared with completion callbacks.
  Result<void> WaitInFlight();  // all sent parts answered; the first error, if any
  void AbortUpload();
  void Reset();  // after a commit or a failure: back to a clean staged file of the new base

  WriteContext* const ctx_;
  mutable std::mutex mu_;
  std::string key_;
  Mode mode_;
  bool dirty_ = false;
  bool discarded_ = false;
  uint64_t size_ = 0;
  // Streaming state.
  mem::SlotPool::Slot head_;  // part 1
  mem::SlotPool::Slot cur_;   // part cur_part_ (>= 2)
  uint32_t cur_part_ = 2;
  std::string upload_id_;
  s3::Metadata upload_meta_;
  s3::Metadata meta_;
  // Staged state.
  int fd_ = -1;
  ExtentSet local_;
  uint64_t charged_ = 0;  // bytes charged to the staging area
  bool has_base_ = false;
  std::string base_etag_;
  uint64_t base_limit_ = 0;  // base bytes below this are still part of the file

  // Completion state (guarded by done_mu_, never held across I/O).
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  uint32_t in_flight_ = 0;
  std::map<uint32_t, std::string> parts_;
  std::optional<Error> error_;
};

}  // namespace s3rdmafs::fs
