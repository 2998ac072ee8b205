// OpenFiles: the one owner of what is open (internal to the fs layer): file
// and directory handles, the read-ahead state each object version's readers
// share, the write state (DirtyFile) of each inode being written, the holds
// that keep it alive, and what must happen at the last close (a delete
// deferred by an unlink or a rename, a copy kept aside for readers).
// Everything here is guarded by one mutex that is never held across I/O and
// never while the inode table's lock is taken (lock order: docs/ARCHITECTURE.md).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "handles.h"

namespace s3rdmafs::fs {

class OpenFiles {
 public:
  explicit OpenFiles(readahead::PolicyConfig readahead) : readahead_(readahead) {}
  ~OpenFiles() { Clear(); }
  OpenFiles(const OpenFiles&) = delete;
  OpenFiles& operator=(const OpenFiles&) = delete;

  // File handles. AddFile gives the handle the read-ahead state of its
  // object version (shared with the version's other readers).
  uint64_t AddFile(std::shared_ptr<FileHandle> h);
  std::shared_ptr<FileHandle> File(uint64_t fh) const;
  // Removes the handle; the caller finishes the close (FinishedReading, then
  // the hold). `others_write`: another writable handle of the same inode is
  // still open, and its close publishes what the write state holds.
  struct TakenFile {
    std::shared_ptr<FileHandle> handle;
    bool others_write = false;
  };
  TakenFile TakeFile(uint64_t fh);
  // The handle no longer reads: its version's read-ahead state goes with
  // its last reader.
  void FinishedReading(FileHandle& h);
  // What a read of `h` reads now: its version and key, or the copy a
  // rename kept aside for it. `aside` says it is that copy.
  struct ReadTarget {
    std::string key;
    meta::ObjectVersion version;
    bool aside = false;
  };
  ReadTarget ReadTargetOf(const FileHandle& h) const;
  // A handle that had not read yet moves to the version a re-validation found.
  void SetVersion(FileHandle& h, const meta::ObjectVersion& version);

  // Directory handles.
  uint64_t AddDir(std::shared_ptr<DirHandle> d);
  std::shared_ptr<DirHandle> Dir(uint64_t dh) const;
  void DropDir(uint64_t dh);

  // Write state. Every open handle, and an open or setattr in progress,
  // holds its inode; the write state lives while any hold does.
  std::shared_ptr<DirtyFile> Dirty(uint64_t ino) const;
  std::shared_ptr<DirtyFile> Hold(uint64_t ino);  // the inode's write state, if any
  // The inode's write state from now on: `made`, unless one is there (which wins).
  std::shared_ptr<DirtyFile> Attach(uint64_t ino, std::shared_ptr<DirtyFile> made);
  // One hold ends. If it is the last and the file has unsaved bytes that
  // may be saved, nothing changes and `save` says what to commit (the hold
  // stays across the commit; call again after it). Else, for the last hold,
  // the write state is dropped and what was deferred to the last close is
  // handed over, all in one step: a truncate racing the kernel's
  // asynchronous RELEASE is never dropped unsaved.
  struct LastClose {
    bool last = false;                   // the inode has no hold left
    std::shared_ptr<DirtyFile> save;     // commit this, then release again
    std::shared_ptr<DirtyFile> dropped;  // the write state that was dropped
    std::optional<std::pair<std::string, std::string>> deferred_delete;  // key, etag
  };
  LastClose Release(uint64_t ino, bool may_save);

  // Unlinked or renamed away while held: the object (key, etag) is deleted
  // at the last close instead of now. False (nothing recorded) if not held.
  bool DeferDeleteIfHeld(uint64_t ino, const std::string& key, const std::string& etag);
  bool Held(uint64_t ino) const;
  // A rename replaced the held inode's object: its readers read the copy
  // (key, etag) of version `version_id` until the last close deletes it.
  void KeepAside(uint64_t ino, uint64_t version_id, const std::string& key,
                 const std::string& etag);

  // What an open file changes in its attributes: the size of its unsaved
  // bytes, and (if `nlink` is given) no link once its name went while open.
  // The one place a write state's size reaches attributes.
  void Overlay(uint64_t ino, uint64_t* size, uint32_t* nlink) const;
  // Inodes that must not be forgotten: open, written or awaiting their last close.
  std::unordered_set<uint64_t> InUse() const;
  // Unmount: handles never closed go (their uploads are aborted by the
  // write states' destructors; nothing partial is published).
  void Clear();

 private:
  struct Aside {
    uint64_t version_id = 0;
    std::string key, etag;
  };
  // Files and directories share one handle space (mu_ held).
  template <class Map>
  uint64_t Insert(Map& map, typename Map::mapped_type handle) {
    const uint64_t id = next_handle_++;
    map.emplace(id, std::move(handle));
    return id;
  }
  const readahead::PolicyConfig readahead_;
  mutable std::mutex mu_;
  uint64_t next_handle_ = 1;                                            // guarded by mu_
  std::unordered_map<uint64_t, std::shared_ptr<FileHandle>> files_;     // guarded by mu_
  std::unordered_map<uint64_t, std::shared_ptr<DirHandle>> dirs_;       // guarded by mu_
  std::unordered_map<uint64_t, std::weak_ptr<ReadState>> read_states_;  // by version id; mu_
  std::unordered_map<uint64_t, std::shared_ptr<DirtyFile>> writes_;     // by ino; guarded by mu_
  std::unordered_map<uint64_t, uint32_t> holds_;                        // by ino; guarded by mu_
  std::unordered_map<uint64_t, uint32_t> writers_;  // writable handles by ino; guarded by mu_
  // ino -> (key, etag) deleted at the last close; guarded by mu_
  std::unordered_map<uint64_t, std::pair<std::string, std::string>> deferred_deletes_;
  std::unordered_map<uint64_t, Aside> aside_;  // ino -> copy kept for readers; guarded by mu_
};

}  // namespace s3rdmafs::fs
