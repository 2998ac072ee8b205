// The directories' attribute records (meta/dir_record.h): read by listings,
// written by the mount that changes a directory's files.
//
// Owner of which directories have changes their record does not show yet,
// and of the one thread that writes records. A change is written about a
// second later, so a burst (tar, cp -r) costs one record write, not one per
// file; a directory whose record is large waits longer between writes.
// Writing is a read-merge-write guarded by the record's ETag (If-Match, or
// If-None-Match: * for the first), so mounts that share a directory merge
// rather than overwrite each other; a conflict is retried.
//
// Where records live: <mount prefix>.s3rdmafs-preserved/records/<directory
// relative to the mount>@ - out of every listing, shared by the mounts of
// the same prefix.
//
// Thread-safety: every method may be called from any thread; no lock is held
// across network I/O.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "s3rdmafs/meta/dir_record.h"
#include "s3rdmafs/meta/inode_table.h"
#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::fs {

class DirRecords {
 public:
  struct Options {
    std::string root_prefix;  // "" or ending in '/'
    bool write = true;        // false (read-only mount): records are read, never written
    std::chrono::milliseconds delay{1000};  // from a change to its record write
  };
  DirRecords(Options options, s3::ObjectStore* store, meta::InodeTable* inodes);
  // Stops the writer; changes not yet written are dropped (FlushAll first).
  ~DirRecords();
  DirRecords(const DirRecords&) = delete;
  DirRecords& operator=(const DirRecords&) = delete;

  // The record of directory `dir_key` ("" or ending in '/'), read in the
  // background; `done` gets it (empty when there is none or it cannot be
  // read: a record only saves requests, so its failure is logged, not raised).
  void ReadAsync(const std::string& dir_key, const std::function<void(meta::DirRecord)>& done);

  // A file in directory `dir_ino` was published, renamed in or had its
  // attributes changed by this mount.
  void Changed(uint64_t dir_ino);
  // `name` left directory `dir_ino` (unlink, rename away).
  void Removed(uint64_t dir_ino, std::string name);

  // A directory moved from `old_dir_key` to `new_dir_key` (keys, ending in
  // '/'): its record and those of its subdirectories move with it (server
  // copies, then deletes). Best effort: a record left behind only costs
  // requests.
  void MoveTree(const std::string& old_dir_key, const std::string& new_dir_key);
  // A directory is gone (rmdir): its record goes too.
  void Forget(const std::string& dir_key);

  // Writes every pending record now (unmount), giving up after `budget`.
  // True when nothing is left pending.
  bool FlushAll(std::chrono::milliseconds budget);

  std::string KeyFor(const std::string& dir_key) const;

 private:
  struct Pending {
    std::chrono::steady_clock::time_point due;
    std::set<std::string> removed;
  };
  struct Written {  // pacing: a large record is rewritten less often
    std::chrono::steady_clock::time_point at;
    size_t bytes = 0;
  };
  void Run();
  Result<size_t> WriteOne(uint64_t dir_ino, const std::set<std::string>& removed);
  void MarkLocked(uint64_t dir_ino);

  const Options options_;
  s3::ObjectStore* const store_;
  meta::InodeTable* const inodes_;
  std::mutex mu_;
  std::condition_variable wake_;         // the writer: something is due, or stop
  std::condition_variable flushed_;      // FlushAll: pending_ shrank
  std::map<uint64_t, Pending> pending_;  // guarded by mu_
  std::map<uint64_t, Written> written_;  // guarded by mu_
  bool flush_now_ = false;               // guarded by mu_
  bool writing_ = false;                 // guarded by mu_: a write taken off pending_ is out
  bool stop_ = false;                    // guarded by mu_
  std::thread writer_;
};

}  // namespace s3rdmafs::fs
