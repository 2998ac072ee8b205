#include "s3rdmafs/fs/filesystem.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <future>
#include <unordered_set>

#include "attribute_prefetcher.h"
#include "dir_records.h"
#include "open_files.h"
#include "s3rdmafs/common/clock.h"
#include "s3rdmafs/common/log.h"
#include "staging.h"
#include "upload_journal.h"

namespace s3rdmafs::fs {

Filesystem::Filesystem(FsOptions options, s3::ObjectStore* store, fetch::RangeFetcher* fetcher,
                       cache::BlockCache* cache, fetch::PartUploader* uploader,
                       mem::SlotPool* buffers)
    : options_(std::move(options)),
      store_(store),
      fetcher_(fetcher),
      cache_(cache),
      inodes_(options_.root_prefix, options_.ttls),
      open_(std::make_unique<OpenFiles>(options_.readahead)) {
  mount_time_ns_ = RealtimeNs();
  // 32 at once; ~100 bytes per queued entry.
  prefetcher_ = std::make_unique<AttributePrefetcher>(
      32, size_t{1} << 20,
      [this](uint64_t ino, const std::string& key, std::function<void()> done) {
        return PrefetchOne(ino, key, std::move(done));
      });
  staging_ = std::make_unique<StagingArea>(options_.staging_dir, options_.staging_max);
  write_ctx_ = std::make_unique<WriteContext>();
  write_ctx_->store = store_;
  write_ctx_->uploader = uploader;
  write_ctx_->buffers = buffers;
  write_ctx_->staging = staging_.get();
  write_ctx_->streaming = options_.streaming;
  write_ctx_->detect_conflicts = options_.detect_conflicts;
  write_ctx_->buffer_wait = options_.cache_wait;
  uint64_t parts_limit = buffers ? buffers->slot_size() * 10000 : 0;
  write_ctx_->max_file_size =
      options_.max_file_size ? std::min(options_.max_file_size, parts_limit) : parts_limit;
  if (!uploader || !buffers) options_.writable = false;
  if (options_.object_attributes && options_.listing == FsOptions::Listing::kRecords) {
    DirRecords::Options ro;
    ro.root_prefix = options_.root_prefix;
    ro.write = options_.writable;
    records_ = std::make_unique<DirRecords>(ro, store_, &inodes_);
  }
  if (options_.idle_forget.count() > 0) {
    const auto period = std::clamp(options_.idle_forget / 4, std::chrono::milliseconds(100),
                                   std::chrono::milliseconds(1000));
    sweeper_ = std::make_unique<Periodic>(period, [this] { SweepMetadata(); });
  }
}

size_t Filesystem::SweepMetadata() {
  // What is open is never cold. A snapshot, so the table's lock is never
  // taken with OpenFiles' held or the other way round.
  const std::unordered_set<uint64_t> open = open_->InUse();
  // At most this many names to the kernel per pass: a huge tree goes
  // quietly over several seconds rather than in one burst.
  constexpr size_t kForgetsPerPass = 20000;
  auto r = inodes_.Sweep(options_.idle_forget, options_.max_inodes, kForgetsPerPass,
                         [&open](uint64_t ino) { return open.count(ino) != 0; });
  if (!r.forget.empty()) {
    std::function<void(uint64_t, const std::string&)> tell;
    {
      std::lock_guard lock(name_dropped_mu_);
      tell = name_dropped_;
    }
    if (tell)
      for (auto& [parent, name] : r.forget) tell(parent, name);
  }
  // glibc keeps freed small blocks; a large release (here, or by the
  // kernel's FORGETs since the last pass) should show in RSS.
  const size_t now = inodes_.size();
  if (now + 4096 <= swept_peak_) {
    malloc_trim(0);
    swept_peak_ = now;
  }
  swept_peak_ = std::max(swept_peak_, now);
  return r.dropped;
}

void Filesystem::FlushMetadata(std::chrono::milliseconds budget) {
  if (records_) records_->FlushAll(budget);
}

void Filesystem::RecordChanged(uint64_t ino) {
  if (!records_) return;
  if (auto v = inodes_.Get(ino)) records_->Changed(v->parent);
}

void Filesystem::RecordRemoved(uint64_t parent, std::string_view name) {
  if (records_) records_->Removed(parent, std::string(name));
}

Filesystem::~Filesystem() {
  // Normally the daemon's shutdown has quiesced already (fuse_mount.h); a
  // read still out here would call back into a destroyed object.
  if (uint64_t out = reads_.CloseAndWait(options_.read_timeout))
    LOG_ERROR("%llu reads still in flight as the filesystem goes",
              static_cast<unsigned long long>(out));
  records_.reset();  // its writer reads the inode table
  sweeper_.reset();
  prefetcher_->Stop();  // background HEADs call back into this object
  // Dirty files still here were never closed (a lazy unmount): their uploads
  // are aborted by their destructors; nothing partial is published.
  open_->Clear();
}

Result<void> Filesystem::PrepareWrites() {
  if (!options_.writable) return {};
  if (auto r = staging_->Prepare(); !r) return r;
  if (options_.upload_scope.empty()) return {};
  std::vector<OpenUpload> leftovers;
  auto journal = UploadJournal::Open(staging_->dir(), options_.upload_scope, &leftovers);
  if (!journal) return tl::unexpected(journal.error());
  journal_ = std::move(*journal);
  write_ctx_->journal = journal_.get();
  size_t aborted = 0;
  for (const auto& u : leftovers) {
    auto r = store_->AbortUpload(u.key, u.upload_id);
    if (r || r.error().code == Errc::kNoSuchUpload)
      ++aborted;
    else
      LOG_WARN("could not abort the upload of '%s' a crashed mount left (%s): %s", u.key.c_str(),
               u.upload_id.c_str(), r.error().ToString().c_str());
  }
  if (!leftovers.empty())
    LOG_INFO("aborted %zu multipart upload(s) an earlier mount of this bucket left open", aborted);
  return {};
}

double Filesystem::negative_timeout() const { return inodes_.ttls().negative.count() / 1000.0; }
double Filesystem::attr_timeout() const { return inodes_.ttls().attr.count() / 1000.0; }
double Filesystem::entry_timeout() const { return inodes_.ttls().entry.count() / 1000.0; }

meta::PosixMeta Filesystem::EffectivePosix(const meta::InodeView& v) const {
  meta::PosixMeta p = v.version.posix;
  uint32_t type = v.is_dir ? S_IFDIR : S_IFREG;
  if (p.mode == 0) p.mode = type | (v.is_dir ? options_.dir_mode : options_.file_mode);
  if ((p.mode & S_IFMT) == 0) p.mode |= type;
  if (!p.uid) p.uid = options_.uid;
  if (!p.gid) p.gid = options_.gid;
  if (p.mtime_ns == 0) p.mtime_ns = v.is_dir ? mount_time_ns_ : v.version.mtime_ns;
  return p;
}

s3::Metadata Filesystem::MetaFor(const meta::InodeView& v) const {
  s3::Metadata m;
  meta::StorePosixMeta(EffectivePosix(v), &m);
  return m;
}

Attributes Filesystem::ToAttributes(const meta::InodeView& v) const {
  Attributes a;
  a.ino = v.ino;
  a.is_dir = v.is_dir;
  meta::PosixMeta p = EffectivePosix(v);
  a.mode = p.mode;
  a.uid = *p.uid;
  a.gid = *p.gid;
  a.mtime_ns = p.mtime_ns;
  a.ctime_ns = p.ctime_ns ? p.ctime_ns : p.mtime_ns;
  a.atime_ns = p.atime_ns ? p.atime_ns : p.mtime_ns;
  a.rdev = p.rdev;
  if (v.is_dir) {
    a.mode = S_IFDIR | (a.mode & 07777);  // a marker's mode cannot make a directory a file
    a.nlink = 2;
    a.size = 4096;
  } else {
    if ((a.mode & S_IFMT) == S_IFDIR) a.mode = S_IFREG | (a.mode & 07777);
    a.size = v.version.size;
  }
  return a;
}

Entry Filesystem::MakeEntry(uint64_t ino) {
  Entry e;
  e.entry_timeout = entry_timeout();
  e.attr_timeout = attr_timeout();
  inodes_.IncLookup(ino);
  auto v = inodes_.Get(ino);
  if (v) e.attr = ToAttributes(*v);
  open_->Overlay(ino, &e.attr.size, nullptr);
  return e;
}

Result<meta::InodeView> Filesystem::Resolve(uint64_t parent, std::string_view name) {
  if (name.size() > 255) return MakeError(Errc::kNameTooLong, "name longer than 255 bytes");
  auto p = inodes_.Get(parent);
  if (!p) return MakeError(Errc::kNotFound, "stale parent inode");
  if (!p->is_dir) return MakeError(Errc::kNotDir, "parent is not a directory");
  // No such key can exist: looking it up finds nothing (ENOENT, as for any
  // absent name); only making it is ENAMETOOLONG (ParentForNew, Create).
  if (p->key.size() + name.size() > kMaxKey)
    return MakeError(Errc::kNotFound, "no key is longer than S3's 1,024 bytes");
  if (parent == meta::kRootIno && name == kPreservedDir)
    return MakeError(Errc::kNotFound, "the mount's own directory");
  if (auto child = inodes_.FreshChild(parent, name)) return *child;
  if (inodes_.IsNegative(parent, name)) return MakeError(Errc::kNotFound, "cached negative entry");
  if (inodes_.KnownAbsent(parent, name))
    return MakeError(Errc::kNotFound, "not in the directory's listing");

  // A name is a directory if anything lives under "name/" (directories win
  // over a same-named object, as in other S3 mounts); else a file if the
  // object exists. Both questions go out at once.
  std::string key = p->key + std::string(name);
  // The file question is a GET of the first bytes rather than a HEAD: the
  // same headers, and a small file's data comes along (no second request
  // when it is then read).
  std::vector<std::byte> first(std::min<uint64_t>(options_.small_file_read, cache_->block_size()));
  std::promise<Result<s3::ObjectStore::HeadWithBody>> head_p;
  std::promise<Result<s3::ListPage>> list_p;
  HeadOrFirstBytes(key, first, [&head_p](Result<s3::ObjectStore::HeadWithBody> r) {
    head_p.set_value(std::move(r));
  });
  s3::ListRequest lr;
  lr.prefix = key + "/";
  lr.delimiter = "/";
  lr.max_keys = 1;
  store_->ListAsync(lr, [&list_p](Result<s3::ListPage> r) { list_p.set_value(std::move(r)); });
  Result<s3::ObjectStore::HeadWithBody> head = head_p.get_future().get();
  Result<s3::ListPage> list = list_p.get_future().get();

  if (!list) return tl::unexpected(list.error());
  uint64_t ino;
  if (!list->objects.empty() || !list->common_prefixes.empty()) {
    ino = inodes_.UpsertDir(parent, name);
  } else if (head) {
    ino = inodes_.UpsertFile(parent, name, head->info);
    CacheFirstBlock(ino, head->info.etag, first.data(), head->bytes);
  } else if (head.error().code == Errc::kNoSuchKey) {
    inodes_.AddNegative(parent, name);
    return MakeError(Errc::kNotFound, "no such key");
  } else {
    return tl::unexpected(head.error());
  }
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "inode forgotten");
  return *v;
}

// Starts one background attribute fetch (AttributePrefetcher), unless a
// LOOKUP got there first.
bool Filesystem::PrefetchOne(uint64_t ino, const std::string& key, std::function<void()> done) {
  auto v = inodes_.Get(ino);
  if (!v || v->version.posix_known || v->local) return false;
  FetchFileAttributes(ino, key, v->version.size, options_.small_file_read,
                      [done = std::move(done)](const Result<s3::ObjectInfo>&) { done(); });
  return true;
}

Result<Entry> Filesystem::Lookup(uint64_t parent, std::string_view name) {
  auto v = Resolve(parent, name);
  if (!v) return tl::unexpected(v.error());
  // The kernel keeps what we answer: attributes must be whole (mode and type
  // from x-amz-meta-*), not the LIST-only ones a readdir left behind.
  auto fresh = Refresh(*v);
  if (!fresh) return tl::unexpected(fresh.error());
  return MakeEntry(fresh->ino);
}

void Filesystem::Forget(uint64_t ino, uint64_t nlookup) { inodes_.Forget(ino, nlookup); }

Result<meta::InodeView> Filesystem::Refresh(const meta::InodeView& v, bool for_read) {
  // A listing guessed "regular file" and the store said otherwise: the name
  // has a new inode; ESTALE makes the kernel look it up again.
  if (v.replaced)
    return MakeError(Errc::kPreconditionFailed, "'" + v.key + "' is not a regular file");
  if (v.local) return v;
  if (v.is_dir) {
    // A directory's attributes live on its marker object ("dir/"), if any.
    if (!options_.object_attributes || v.version.posix_known || v.key.empty()) return v;
    auto marker = store_->Head(v.key);
    if (!marker && marker.error().code != Errc::kNoSuchKey) return tl::unexpected(marker.error());
    inodes_.SetPosix(
        v.ino, marker && marker->has_meta ? meta::ParsePosixMeta(marker->meta) : meta::PosixMeta{});
    auto fresh = inodes_.Get(v.ino);
    if (!fresh) return MakeError(Errc::kNotFound, "inode forgotten");
    return *fresh;
  }
  if (v.attr_fresh && (v.version.posix_known || !options_.object_attributes)) return v;
  std::promise<Result<s3::ObjectInfo>> got;
  FetchFileAttributes(v.ino, v.key, v.version.etag.empty() ? 0 : v.version.size,
                      for_read ? cache_->block_size() : options_.small_file_read,
                      [&got](Result<s3::ObjectInfo> r) { got.set_value(std::move(r)); });
  auto head = got.get_future().get();
  if (!head) {
    if (head.error().code == Errc::kNoSuchKey) {
      inodes_.MarkStale(v.ino);
      return MakeError(Errc::kNotFound, "object '" + v.key + "' is gone");
    }
    return tl::unexpected(head.error());
  }
  auto fresh = inodes_.Get(v.ino);
  if (!fresh) return MakeError(Errc::kNotFound, "inode forgotten");
  if (fresh->replaced)
    return MakeError(Errc::kPreconditionFailed, "'" + v.key + "' is not a regular file");
  return *fresh;
}

void Filesystem::CacheFirstBlock(uint64_t ino, const std::string& etag, const std::byte* data,
                                 uint64_t got) {
  auto v = inodes_.Get(ino);
  // Only a whole block 0: the object entire, or a block's worth of it.
  const uint64_t size = std::min<uint64_t>(v ? v->version.size : 0, cache_->block_size());
  if (!v || v->version.etag != etag || size == 0 || got != size) return;
  // Block 0 of this version, as a read would have filled it. No room now:
  // the first read fetches it instead.
  auto acq = cache_->Acquire({v->version.id, 0});
  if (!acq || acq->state != cache::BlockCache::Acquired::kMustFill) return;
  memcpy(acq->block->data(), data, size);
  cache_->Complete(acq->block.get(), static_cast<uint32_t>(size));
  acq->block.SetRetention(cache::Retention::kLru);
}

void Filesystem::HeadOrFirstBytes(
    const std::string& key, std::span<std::byte> into,
    const std::function<void(Result<s3::ObjectStore::HeadWithBody>)>& done) {
  auto head = [this, key, done] {
    store_->HeadAsync(key, [done](Result<s3::ObjectInfo> r) {
      if (!r) return done(tl::unexpected(r.error()));
      done(s3::ObjectStore::HeadWithBody{std::move(*r), 0});
    });
  };
  if (into.empty()) return head();
  store_->HeadWithBodyAsync(key, into, [done, head](Result<s3::ObjectStore::HeadWithBody> r) {
    // Failed for any reason but the answer itself (an empty object has no
    // first bytes: 416 on S3, other codes elsewhere; a server may send more
    // than was asked): the HEAD decides.
    if (!r && r.error().code != Errc::kNoSuchKey && r.error().code != Errc::kAccessDenied &&
        r.error().code != Errc::kNoSuchBucket)
      return head();
    done(std::move(r));
  });
}

void Filesystem::FetchFileAttributes(uint64_t ino, const std::string& key, uint64_t listed_size,
                                     uint64_t bytes_limit,
                                     const std::function<void(Result<s3::ObjectInfo>)>& done) {
  const uint64_t limit = std::min<uint64_t>(bytes_limit, cache_->block_size());
  // The bytes too only for a file small by its listing (room for it a little
  // grown since): a stat of a large file must not move data.
  auto buf =
      std::make_shared<std::vector<std::byte>>(listed_size == 0 || listed_size > limit ? 0 : limit);
  HeadOrFirstBytes(key, *buf, [this, ino, buf, done](Result<s3::ObjectStore::HeadWithBody> r) {
    if (!r) return done(tl::unexpected(r.error()));
    const uint64_t now_named = inodes_.RefreshFile(ino, r->info);
    CacheFirstBlock(now_named, r->info.etag, buf->data(), r->bytes);
    done(std::move(r->info));
  });
}

Result<Attributes> Filesystem::GetAttr(uint64_t ino) {
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  auto fresh = Refresh(*v);
  if (!fresh) return tl::unexpected(fresh.error());
  Attributes a = ToAttributes(*fresh);
  open_->Overlay(ino, &a.size, &a.nlink);
  return a;
}

Result<void> Filesystem::DropHold(uint64_t ino, bool may_save) {
  std::optional<Error> failed;
  OpenFiles::LastClose last;
  for (;;) {
    last = open_->Release(ino, may_save && !failed);
    if (!last.save) break;
    // Changed since the last commit (a truncate while the last handle
    // closed): save it, then look again.
    if (auto r = CommitInode(ino, last.save.get()); !r) failed = r.error();
  }
  if (!last.last) return {};
  if (last.dropped) {
    inodes_.SetLocal(ino, false);
    // A new file whose every commit failed has no object: its name goes too,
    // or this mount would show a file no one else can see.
    if (auto v = inodes_.Get(ino); v && v->version.etag.empty() && !v->is_dir)
      if (auto named = inodes_.FreshChild(v->parent, v->name); named && named->ino == ino) {
        inodes_.Unlink(v->parent, v->name);
        std::function<void(uint64_t, const std::string&)> tell;
        {
          std::lock_guard lock(name_dropped_mu_);
          tell = name_dropped_;
        }
        if (tell)  // not from this request's thread: the kernel may hold the directory
          read_deadlines_.After(std::chrono::milliseconds(0),
                                [tell, parent = v->parent, name = v->name] { tell(parent, name); });
      }
  }
  if (const auto& deferred = last.deferred_delete) {
    // Only if the name still holds what was unlinked (not a newer file).
    auto head = store_->Head(deferred->first);
    if (head && head->etag == deferred->second) {
      if (auto r = store_->Delete(deferred->first); !r)
        LOG_WARN("deferred delete of '%s' failed: %s", deferred->first.c_str(),
                 r.error().ToString().c_str());
    }
  }
  if (failed) return tl::unexpected(*failed);
  return {};
}

Result<OpenResult> Filesystem::Open(uint64_t ino, int flags, Caller who) {
  const bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  if (write && !options_.writable) return MakeError(Errc::kReadOnly, "read-only mount");
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  if (v->is_dir) return MakeError(Errc::kIsDir, "is a directory");
  // The hold keeps a write state found here alive until the handle owns it.
  auto opened = OpenHeld(*v, flags, who, open_->Hold(ino));
  if (!opened) (void)DropHold(ino);
  return opened;
}

Result<OpenResult> Filesystem::OpenHeld(const meta::InodeView& v, int flags, Caller who,
                                        std::shared_ptr<DirtyFile> dirty) {
  const uint64_t ino = v.ino;
  const bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  meta::InodeView fresh = v;
  if (!dirty) {
    // Close-to-open: an open re-validates attributes whose TTL has run out, so
    // a reader sees the version that existed when it opened.
    auto r = Refresh(v, !write);
    if (!r) return tl::unexpected(r.error());
    fresh = *r;
  }
  if (write) {
    if (dirty && (flags & O_TRUNC)) {
      if (auto t = dirty->Truncate(0); !t) return tl::unexpected(t.error());
    } else if (!dirty) {
      auto made = (flags & O_TRUNC)
                      ? std::make_shared<DirtyFile>(write_ctx_.get(), fresh.key)
                      : std::make_shared<DirtyFile>(write_ctx_.get(), fresh.key, fresh.version.etag,
                                                    fresh.version.size);
      made->SetMeta(MetaFor(fresh));
      if (options_.detect_conflicts && !fresh.version.etag.empty())
        made->SetCondition({fresh.version.etag, false});  // replace what we saw, or fail
      dirty = open_->Attach(ino, std::move(made));
    }
    inodes_.SetLocal(ino, true);
    if (flags & O_TRUNC) inodes_.TouchMtime(ino, RealtimeNs());
  }
  auto h = std::make_shared<FileHandle>();
  h->ino = ino;
  h->key = fresh.key;
  h->version = fresh.version;
  h->dirty = dirty;
  h->writable = write;
  h->opener = who.process;
  if (options_.streamed_reads && !write && !dirty) h->stream = std::make_shared<ReadStream>();
  OpenResult out;
  // A file with a write state: the kernel's pages may predate our bytes.
  out.keep_cache = !dirty && fresh.last_opened_version == fresh.version.id;
  out.direct_io = options_.direct_io;
  inodes_.SetLastOpened(ino, fresh.version.id);
  out.fh = open_->AddFile(std::move(h));  // the handle owns the hold now
  return out;
}

void Filesystem::Release(uint64_t fh) {
  auto [h, others_write] = open_->TakeFile(fh);
  if (!h) return;
  // The last chance to save what was written (a close whose flush failed, a
  // writable mmap): try once more; the error can only be logged now. Not
  // while another writer is open: the kernel's RELEASE comes after close(2)
  // returned, and the unsaved bytes may be that writer's unfinished file
  // (an O_TRUNC reopen); its own close publishes them.
  bool may_save = true;
  if (!h->writable || !h->dirty || others_write) {
    // nothing of this handle's to save
  } else if (h->dirty->close_failed()) {
    LOG_ERROR(
        "'%s' was not saved: its close reported the failure; the server keeps its "
        "previous version",
        h->key.c_str());
  } else if (h->dirty->dirty() && !h->dirty->discarded()) {
    if (auto r = CommitInode(h->ino, h->dirty.get()); !r) {
      LOG_ERROR("'%s' could not be saved at close: %s", h->key.c_str(),
                r.error().ToString().c_str());
      may_save = false;  // tried just now
    }
  }
  open_->FinishedReading(*h);
  if (auto r = DropHold(h->ino, may_save); !r)
    LOG_ERROR("'%s' could not be saved at close: %s", h->key.c_str(), r.error().ToString().c_str());
}

void Filesystem::SetNameDropped(std::function<void(uint64_t, const std::string&)> fn) {
  std::lock_guard lock(name_dropped_mu_);
  name_dropped_ = std::move(fn);
}

uint64_t Filesystem::staging_bytes() const { return staging_->used(); }

FsStats Filesystem::StatFs() const {
  FsStats s;
  s.block_size = cache_->block_size();
  s.blocks = cache_->Stats().blocks_total;
  s.inodes = inodes_.size();
  return s;
}

}  // namespace s3rdmafs::fs
