// Handle state of fs::Filesystem (internal to the fs layer); OpenFiles owns
// the handles.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dirty_file.h"
#include "s3rdmafs/fs/filesystem.h"
#include "s3rdmafs/meta/dir_record.h"
#include "streamed_reads.h"

namespace s3rdmafs::fs {

inline constexpr uint64_t kMaxKey = 1024;  // S3's longest key, in bytes
// Under the mount's root: copies of files replaced by a rename while a
// reader had them open, kept until its last close (hidden from listings).
inline constexpr std::string_view kPreservedDir = ".s3rdmafs-preserved";

struct ReadState {
  std::mutex mu;
  readahead::Policy policy;  // guarded by mu
  explicit ReadState(const readahead::PolicyConfig& c) : policy(c) {}
};

struct FileHandle {
  uint64_t ino = 0;
  std::string key;
  // What this open sees, whatever happens later (close-to-open); guarded by
  // OpenFiles' lock (a re-validation may move a handle that has not read).
  meta::ObjectVersion version;
  std::shared_ptr<ReadState> read_state;
  // Set while the inode has a write state: reads see its bytes, writes go to it.
  std::shared_ptr<DirtyFile> dirty;
  bool writable = false;
  uint32_t opener = 0;                 // process (thread group) that opened it
  std::atomic<bool> has_read{false};   // a read returned bytes: no version switch after that
  std::shared_ptr<ReadStream> stream;  // set for read-only direct_io handles (streamed_reads)
};

struct DirHandle {
  std::mutex mu;  // one readdir at a time per handle
  uint64_t ino = 0;
  std::string prefix;
  // The current page of the streaming listing; entry i of the directory is
  // page[i - page_start]. Offsets 0 and 1 are "." and "..".
  struct Item {
    std::string name;
    bool is_dir;
    s3::ObjectInfo info;
  };
  // Files created here and not yet uploaded: listed after the store's entries.
  std::vector<std::string> local_names;
  std::vector<Item> page;
  uint64_t page_start = 2;
  std::string next_token;
  bool started = false;
  bool done = false;
  meta::DirRecord record;          // the directory's attribute record, read with the first page
  bool whole_pass = false;         // this pass (readdirplus from 0) has put every name in the table
  uint64_t removals_at_start = 0;  // InodeTable::RemovalCount when it began
  uint32_t sampled = 0;       // files HEADed to learn whether this directory carries x-amz-meta-*
  bool carries_meta = false;  // one did: the rest get per-file HEADs
};

}  // namespace s3rdmafs::fs
