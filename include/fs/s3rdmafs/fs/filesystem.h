// fs::Filesystem: the FUSE-free core of the mount (reads, writes, the
// namespace). Every operation
// returns Result<T>; the FUSE adapter only translates (errno mapping lives in
// src/fuse/errno_map.cc).
//
// Read path: a read pins the cache blocks it needs; blocks that are missing are
// filled by RangeFetcher jobs (contiguous misses merged up to max_request),
// together with the read-ahead the policy plans. The reply is a list of iovecs
// pointing into pinned cache blocks: no user-space copy; the pins are released
// when the ReadReply is destroyed, after the adapter has written the reply.
//
// Thread-safety: all methods may be called concurrently from FUSE worker
// threads. Methods block on network I/O (lookups, cache misses) - call them
// from worker threads only, never from a transport's completion thread.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "s3rdmafs/cache/block_cache.h"
#include "s3rdmafs/common/deadline_timer.h"
#include "s3rdmafs/common/periodic.h"
#include "s3rdmafs/common/result.h"
#include "s3rdmafs/common/work_gate.h"
#include "s3rdmafs/fetch/part_uploader.h"
#include "s3rdmafs/fetch/range_fetcher.h"
#include "s3rdmafs/mem/slot_pool.h"
#include "s3rdmafs/meta/inode_table.h"
#include "s3rdmafs/readahead/policy.h"
#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::fs {

struct FsOptions {
  std::string root_prefix;  // "" or ending in '/'
  meta::Ttls ttls;
  uint32_t uid = 0, gid = 0;
  uint32_t file_mode = 0444, dir_mode = 0555;
  bool direct_io = false;
  bool streamed_reads = false;  // direct_io reads by splice from a GET (fs/streamed_reads.h)
  // Streamed reads wait on their FUSE worker: at most this many at once, so
  // that stat, lookup and readdir always find a worker (half of fuse.max_threads).
  uint32_t max_streamed_waits = 8;
  readahead::PolicyConfig readahead;
  uint64_t max_request = 8ull << 20;
  std::chrono::milliseconds cache_wait{60000};
  std::chrono::milliseconds read_timeout{60000};  // every read answers by then
  bool object_attributes = true;  // mode/uid/gid/mtime from x-amz-meta-* (HEAD per file)
  // What a listing (readdirplus, `ls -l`) shows of files' x-amz-meta-*:
  //  kRecords: what the directory's attribute record says (one GET per
  //    listing, kept up to date by the mounts that write there: src/fs/
  //    dir_records.h); files it does not vouch for show the listing's own
  //    attributes until their lookup, open or stat asks with a HEAD.
  //  kHeads: a HEAD per listed file (in the background, 32 at once).
  enum class Listing { kRecords, kHeads };
  Listing listing = Listing::kRecords;
  // Bounded metadata: inodes untouched this long are released, and the
  // coldest early past max_inodes (0: no sweeper thread).
  std::chrono::milliseconds idle_forget{60000};
  size_t max_inodes = 200000;
  // Files this small come whole with the request that reads their
  // attributes (a GET of the first bytes instead of a HEAD), into the cache:
  // one request per cold small file. 0 (default): HEADs. At most a block.
  // Cached bytes are then trusted for attr_ttl like any others, so an open
  // within it does not see another client's overwrite at its first read.
  uint64_t small_file_read = 0;
  // Writes (docs: man/s3rdmafs-semantics.7).
  bool writable = true;
  bool streaming = true;
  bool detect_conflicts = true;  // commits over an object send If-Match with the ETag seen at open
  uint64_t max_file_size = 0;    // 0: 10,000 parts
  std::string staging_dir = "/var/cache/s3rdmafs";
  uint64_t staging_max = 16ull << 30;
  // Endpoint, bucket and prefix: the next mount of the same scope on this
  // host aborts the uploads a crash of this one left open ("" : no journal).
  std::string upload_scope;
};

// Who asks (FUSE request context): owner of what create/mkdir/symlink make;
// `process` (the thread group id, 0 = unknown) tells the opener's own close
// from a forked child closing an inherited descriptor.
struct Caller {
  uint32_t uid = 0, gid = 0;
  uint32_t process = 0;
};

struct SetAttrRequest {
  std::optional<uint32_t> mode;  // permission bits
  std::optional<uint32_t> uid, gid;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime_ns, atime_ns;
};

struct Attributes {
  uint64_t ino = 0;
  bool is_dir = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t atime_ns = 0;
  uint32_t mode = 0;  // including the type (S_IFDIR, S_IFREG, S_IFLNK, S_IFIFO, ...)
  uint64_t rdev = 0;
  uint32_t uid = 0, gid = 0;
  uint32_t nlink = 1;
};

struct Entry {
  Attributes attr;
  double entry_timeout = 0;
  double attr_timeout = 0;
};

struct OpenResult {
  uint64_t fh = 0;
  bool keep_cache = false;
  bool direct_io = false;
};

struct ReadReply {
  std::vector<std::byte> owned;  // bytes of a file with unsaved writes (iov points here)
  std::vector<cache::PinnedBlock> pins;
  std::vector<iovec> iov;
  size_t bytes = 0;
};

struct DirEntry {
  std::string_view name;
  Attributes attr;  // for plain readdir only ino (may be kUnknownIno) and mode matter
  uint64_t next_offset = 0;
  // From LIST only (no x-amz-meta-*): the adapter makes the kernel ask again
  // (no lookup reference is taken for a provisional file).
  bool attr_provisional = false;
};

struct FsStats {
  uint64_t blocks = 0, block_size = 0;
  uint64_t inodes = 0;
};

inline constexpr uint64_t kUnknownIno = 0xffffffff;

class DirtyFile;
struct ReadStream;
class Filesystem;

// A direct_io read whose reply is ready in a pipe (Filesystem::SpliceRead):
// exactly bytes() bytes, taken from the socket by splice(2). The caller
// replies from pipe() and says whether the reply went; until then the
// handle's stream is its alone.
class SplicedRead {
 public:
  SplicedRead(SplicedRead&&) noexcept;
  SplicedRead& operator=(SplicedRead&&) = delete;
  ~SplicedRead();  // not Sent: as Sent(false)
  int pipe() const;
  size_t bytes() const { return bytes_; }
  void Sent(bool ok);

 private:
  friend class Filesystem;
  SplicedRead(Filesystem* fs, std::shared_ptr<ReadStream> stream, std::unique_lock<std::mutex> lock,
              WorkGate::Pass pass, size_t bytes);
  Filesystem* fs_;
  std::shared_ptr<ReadStream> stream_;
  std::unique_lock<std::mutex> lock_;
  WorkGate::Pass pass_;
  size_t bytes_;
  bool done_ = false;
};

struct StreamStats {
  uint64_t opened = 0;    // GETs streamed by splice
  uint64_t bytes = 0;     // bytes replied by splice
  uint64_t failures = 0;  // streams given up (their reads went the cache path)
};

class DirRecords;
class OpenFiles;
class AttributePrefetcher;
struct FileHandle;
struct DirHandle;
class StagingArea;
class UploadJournal;
struct WriteContext;

class Filesystem {
 public:
  // `uploader` and `buffers` (part-sized slots) are needed when writable.
  Filesystem(FsOptions options, s3::ObjectStore* store, fetch::RangeFetcher* fetcher,
             cache::BlockCache* cache, fetch::PartUploader* uploader = nullptr,
             mem::SlotPool* buffers = nullptr);
  ~Filesystem();
  // Prepares the staging directory (creates it, removes leftovers).
  Result<void> PrepareWrites();

  // kNotFound means "does not exist"; reply a negative entry for negative_timeout().
  Result<Entry> Lookup(uint64_t parent, std::string_view name);
  void Forget(uint64_t ino, uint64_t nlookup);
  Result<Attributes> GetAttr(uint64_t ino);

  Result<OpenResult> Open(uint64_t ino, int flags, Caller who = {});
  // Writes (src/fs/write_path.cc). A file's bytes become an object on Flush
  // (every close(2)), Fsync and the last Release; errors surface there.
  Result<std::pair<Entry, OpenResult>> Create(uint64_t parent, std::string_view name, uint32_t mode,
                                              int flags, Caller who);
  // mknod(2): an empty object, published at once; FIFOs, sockets and
  // devices keep their type (and rdev) in the mode, as s3fs stores them.
  Result<Entry> Mknod(uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                      Caller who);
  Result<size_t> Write(uint64_t fh, uint64_t offset, std::span<const std::byte> data);
  // close(2): publishes only when the opener's process closes (a child that
  // inherited the descriptor and closes it must not publish a half-written file).
  Result<void> Flush(uint64_t fh, Caller who = {});
  Result<void> Fsync(uint64_t fh);
  Result<Attributes> SetAttr(uint64_t ino, const SetAttrRequest& request);
  // Namespace (src/fs/namespace_ops.cc).
  Result<Entry> Mkdir(uint64_t parent, std::string_view name, uint32_t mode, Caller who);
  Result<void> Rmdir(uint64_t parent, std::string_view name);
  Result<void> Unlink(uint64_t parent, std::string_view name);
  Result<void> Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                      std::string_view new_name, unsigned flags);
  Result<Entry> Symlink(std::string_view target, uint64_t parent, std::string_view name,
                        Caller who);
  Result<std::string> Readlink(uint64_t ino);
  // Asynchronous read: `done` runs at once when every block is cached, else on
  // the thread that completes the last missing fill (never under a lock).
  // A FUSE worker thread therefore never sleeps on the network.
  void ReadAsync(uint64_t fh, uint64_t offset, size_t size,
                 std::function<void(Result<ReadReply>)> done);
  // Blocking form of ReadAsync (tests, tools).
  Result<ReadReply> Read(uint64_t fh, uint64_t offset, size_t size);
  // With streamed_reads, a read of a direct_io handle that its stream can
  // answer whole: the handle reads sequentially, the GET (opened here, from
  // this offset to the object's end) is at `offset`, and every byte came in
  // before the read's deadline, unless `abandon` said stop. Anything else is
  // nullopt, and the read goes by ReadAsync (which fetches again what a
  // failed stream held): a reply is never partial. An error only when the
  // read's deadline is spent (the stream timed out): the answer then, not
  // another wait on the cache path.
  Result<std::optional<SplicedRead>> SpliceRead(uint64_t fh, uint64_t offset, size_t size,
                                                const std::function<bool()>& abandon);
  StreamStats streamed() const;
  void Release(uint64_t fh);

  Result<uint64_t> OpenDir(uint64_t ino);
  // Calls `emit` for entries from `offset` on, until it returns false (buffer
  // full; that entry is not consumed) or the directory ends. With `plus`,
  // each consumed entry (but "." and "..") counts as one lookup.
  Result<void> ReadDir(uint64_t dh, uint64_t offset, bool plus,
                       const std::function<bool(const DirEntry&)>& emit);
  void ReleaseDir(uint64_t dh);

  FsStats StatFs() const;
  double negative_timeout() const;
  double attr_timeout() const;
  double entry_timeout() const;

  // Called (on an internal thread, never inside a request) when the core
  // drops a name by itself, so the adapter can tell the kernel.
  void SetNameDropped(std::function<void(uint64_t parent, const std::string& name)> fn);

  meta::InodeTable& inodes() { return inodes_; }
  // One pass of the metadata sweeper (it runs by itself every second or
  // so): drops cold inodes the kernel does not hold, and asks the kernel
  // (through SetNameDropped's callback) to forget cold names it does.
  // Returns how many inodes were dropped here.
  size_t SweepMetadata();
  void SetTtls(const meta::Ttls& ttls) { inodes_.SetTtls(ttls); }
  // Unmount, before the transports stop: writes the directory records that
  // are still pending, for at most `budget`.
  void FlushMetadata(std::chrono::milliseconds budget);
  uint64_t staging_bytes() const;  // bytes held in the staging area now
  // Shutdown, after the transports have called back everything in flight:
  // refuses new reads and waits, for at most `budget`, until every read has
  // given its answer (the FUSE reply is out). Returns how many are still out.
  uint64_t Quiesce(std::chrono::milliseconds budget);

 private:
  struct PendingRead;  // one read while its blocks are acquired and filled

  void ReadOnce(uint64_t fh, uint64_t offset, size_t size, bool may_revalidate,
                std::function<void(Result<ReadReply>)> done);
  void Revalidate(const std::shared_ptr<FileHandle>& h, uint64_t fh, uint64_t offset, size_t size,
                  Error stale, std::function<void(Result<ReadReply>)> done);
  // Pins the read's blocks, submits fills and read-ahead, and answers once
  // they are ready. When the cache has no block to give, the read waits
  // without a thread (an unpin or a held block's expiry resumes it), so
  // FUSE workers stay free for reads that hit.
  void ContinueRead(std::shared_ptr<PendingRead> p);
  void ResumeRead(const std::shared_ptr<PendingRead>& p, uint64_t epoch);
  Attributes ToAttributes(const meta::InodeView& v) const;
  // The child, known or asked for, without taking a lookup reference.
  Result<meta::InodeView> Resolve(uint64_t parent, std::string_view name);
  // The POSIX attributes to store with an inode's object (defaults filled in).
  meta::PosixMeta EffectivePosix(const meta::InodeView& v) const;
  s3::Metadata MetaFor(const meta::InodeView& v) const;
  // Every open handle, and an open or setattr in progress, holds its inode
  // (OpenFiles::Hold). The last hold to go saves what is unsaved, unless a
  // close already reported it as not saved (OpenFiles::Release), then does
  // what waited for the last close.
  Result<void> DropHold(uint64_t ino, bool may_save = true);
  Result<OpenResult> OpenHeld(const meta::InodeView& v, int flags, Caller who,
                              std::shared_ptr<DirtyFile> dirty);
  Result<void> SetAttrHeld(uint64_t ino, const SetAttrRequest& req,
                           const std::shared_ptr<DirtyFile>& dirty);
  Result<void> CommitInode(uint64_t ino, DirtyFile* d);
  // CopyObject, or a multipart copy above 5 GiB; `replace`: new metadata.
  Result<std::string> CopyObject(const std::string& from, const std::string& etag, uint64_t size,
                                 const std::string& to, const s3::Metadata* replace = nullptr);
  Result<void> CheckEmptyDir(const meta::InodeView& dir);
  // The parent of a name about to be made (mkdir, symlink): EEXIST if taken.
  Result<meta::InodeView> ParentForNew(uint64_t parent, std::string_view name);
  Result<void> RenameDir(const meta::InodeView& dir, const std::string& new_prefix);
  Entry MakeEntry(uint64_t ino);
  Result<ReadReply> ReadDirty(DirtyFile* d, uint64_t offset, size_t size);
  // One background attribute fetch for a file readdirplus listed without
  // its x-amz-meta-* (prefetcher_); false if a LOOKUP fetched them meanwhile.
  bool PrefetchOne(uint64_t ino, const std::string& key, std::function<void()> done);
  // `for_read`: an open for reading asks, so a small file's bytes may come
  // with its attributes (a GET of block 0 instead of a HEAD): they are as
  // fresh as the open, and the read that follows needs no request.
  Result<meta::InodeView> Refresh(const meta::InodeView& v, bool for_read = false);
  // A file's attributes from the store, recorded in the table; for a file
  // small by its listing, its bytes land in cache block 0 in the same request.
  // Puts an object's first `got` bytes into cache block 0 of the inode's
  // version when they are the whole block and the ETag is still that version's.
  void CacheFirstBlock(uint64_t ino, const std::string& etag, const std::byte* data, uint64_t got);
  // What a HEAD says, with the object's first into.size() bytes in the same
  // request when `into` has room (a HEAD when it has none, or when the
  // ranged GET could not serve: an empty object, an odd server).
  void HeadOrFirstBytes(const std::string& key, std::span<std::byte> into,
                        const std::function<void(Result<s3::ObjectStore::HeadWithBody>)>& done);
  void FetchFileAttributes(uint64_t ino, const std::string& key, uint64_t listed_size,
                           uint64_t bytes_limit,
                           const std::function<void(Result<s3::ObjectInfo>)>& done);
  Result<bool> FetchDirPage(DirHandle* d);
  void SubmitFills(const std::string& key, const meta::ObjectVersion& version,
                   std::vector<std::pair<uint64_t, cache::PinnedBlock>> blocks);

  void PreserveForReaders(const meta::InodeView& v);
  void TouchDir(uint64_t dir);
  // The directory record of `ino`'s parent must show what this mount did.
  void RecordChanged(uint64_t ino);
  void RecordRemoved(uint64_t parent, std::string_view name);

  FsOptions options_;
  s3::ObjectStore* store_;
  fetch::RangeFetcher* fetcher_;
  cache::BlockCache* cache_;
  meta::InodeTable inodes_;
  int64_t mount_time_ns_;

  std::unique_ptr<AttributePrefetcher> prefetcher_;  // stopped early in the destructor

  // Write state.
  std::unique_ptr<StagingArea> staging_;
  std::unique_ptr<UploadJournal> journal_;
  std::unique_ptr<WriteContext> write_ctx_;
  // Handles, write states (they use write_ctx_), holds and what waits for a
  // last close.
  std::unique_ptr<OpenFiles> open_;
  std::unique_ptr<DirRecords> records_;  // null: listings use no records
  std::mutex name_dropped_mu_;
  std::function<void(uint64_t, const std::string&)> name_dropped_;  // guarded by name_dropped_mu_
  // The metadata sweeper's thread (stopped early in the destructor).
  std::unique_ptr<Periodic> sweeper_;
  // Most inodes since the last trim (SweepMetadata's callers, one at a time).
  size_t swept_peak_ = 0;
  friend class SplicedRead;
  std::atomic<uint64_t> streams_opened_{0}, streamed_bytes_{0}, stream_failures_{0};
  std::atomic<bool> no_stream_pipes_{false};
  std::atomic<uint32_t> streamed_waits_{0};  // reads in SpliceRead's network part now  // the
                                             // system refused a pipe large enough: said once
  // Reads whose answer has not been given yet (Quiesce waits for them).
  WorkGate reads_;
  // Read deadlines (last member: destroyed first, dropping what is pending).
  DeadlineTimer read_deadlines_;
};

}  // namespace s3rdmafs::fs
