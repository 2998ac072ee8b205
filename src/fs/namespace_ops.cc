// Namespace operations: mkdir/rmdir (directory marker objects "dir/"),
// unlink, rename (CopyObject then delete; directories key by key, not
// atomic), symlinks (an object whose body is the target, s3fs-style).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <unordered_map>

#include "dir_records.h"
#include "open_files.h"
#include "s3rdmafs/common/clock.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {

namespace {

constexpr uint64_t kMaxCopyObject = 5ull << 30;  // S3: larger objects copy by parts
constexpr uint64_t kCopyPart = 1ull << 30;
constexpr size_t kParallelCopies = 16;

// Runs fn(i) for i in [0, n) with at most kParallelCopies at once; the
// first error wins. `fn` starts an async call and reports through `done`.
Result<void> ForEachParallel(
    size_t n, const std::function<void(size_t, std::function<void(Result<void>)>)>& fn) {
  std::mutex mu;
  std::condition_variable cv;
  size_t running = 0;
  std::optional<Error> error;
  for (size_t i = 0; i < n; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return running < kParallelCopies; });
      if (error) break;
      ++running;
    }
    fn(i, [&](Result<void> r) {
      std::lock_guard lock(mu);
      if (!r && !error) error = r.error();
      --running;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return running == 0; });
  if (error) return tl::unexpected(*error);
  return {};
}

}  // namespace

Result<std::string> Filesystem::CopyObject(const std::string& from, const std::string& etag,
                                           uint64_t size, const std::string& to,
                                           const s3::Metadata* replace) {
  if (size <= kMaxCopyObject) return store_->Copy(from, etag, to, replace);
  s3::Metadata meta;
  if (replace) {
    meta = *replace;
  } else {
    auto head = store_->Head(from);
    if (!head) return tl::unexpected(head.error());
    meta = head->meta;
  }
  auto id = store_->CreateUpload(to, meta);
  if (!id) return tl::unexpected(id.error());
  size_t parts = (size + kCopyPart - 1) / kCopyPart;
  std::vector<s3::CompletedPart> done(parts);
  auto r = ForEachParallel(parts, [&](size_t i, const std::function<void(Result<void>)>& finish) {
    s3::CopyPartRequest req;
    req.key = to;
    req.upload_id = *id;
    req.part_number = static_cast<uint32_t>(i + 1);
    req.source_key = from;
    req.source_if_match = etag;
    req.offset = i * kCopyPart;
    req.length = std::min(size - req.offset, kCopyPart);
    store_->CopyPartAsync(req, [&done, i, finish](Result<std::string> e) {
      if (e) done[i] = {static_cast<uint32_t>(i + 1), *e};
      finish(e ? Result<void>() : Result<void>(tl::unexpected(e.error())));
    });
  });
  if (!r) {
    (void)store_->AbortUpload(to, *id);
    return tl::unexpected(r.error());
  }
  auto completed = store_->CompleteUpload(to, *id, done);
  if (!completed) (void)store_->AbortUpload(to, *id);
  return completed;
}

Result<meta::InodeView> Filesystem::ParentForNew(uint64_t parent, std::string_view name) {
  if (!options_.writable) return MakeError(Errc::kReadOnly, "read-only mount");
  auto existing = Resolve(parent, name);
  if (existing) return MakeError(Errc::kExists, "file exists");
  if (existing.error().code != Errc::kNotFound) return tl::unexpected(existing.error());
  auto p = inodes_.Get(parent);
  if (!p) return MakeError(Errc::kNotFound, "stale parent inode");
  if (p->key.size() + name.size() > kMaxKey)
    return MakeError(Errc::kNameTooLong, "the key would be longer than S3's 1,024 bytes");
  return *p;
}

Result<Entry> Filesystem::Mkdir(uint64_t parent, std::string_view name, uint32_t mode, Caller who) {
  auto p = ParentForNew(parent, name);
  if (!p) return tl::unexpected(p.error());
  meta::PosixMeta posix;
  posix.mode = S_IFDIR | (mode & 07777);
  posix.uid = who.uid;
  posix.gid = who.gid;
  posix.mtime_ns = posix.ctime_ns = RealtimeNs();
  s3::PutRequest put;
  put.key = p->key + std::string(name) + "/";
  meta::StorePosixMeta(posix, &put.meta);
  if (auto r = store_->Put(std::move(put)); !r) return tl::unexpected(r.error());
  uint64_t ino = inodes_.UpsertDir(parent, name);
  inodes_.SetPosix(ino, posix);
  TouchDir(parent);
  return MakeEntry(ino);
}

Result<void> Filesystem::CheckEmptyDir(const meta::InodeView& dir) {
  s3::ListRequest lr;
  lr.prefix = dir.key;
  lr.delimiter = "/";
  lr.max_keys = 2;
  auto list = store_->List(lr);
  if (!list) return tl::unexpected(list.error());
  for (auto& o : list->objects)
    if (o.key != dir.key) return MakeError(Errc::kNotEmpty, "directory not empty");
  if (!list->common_prefixes.empty()) return MakeError(Errc::kNotEmpty, "directory not empty");
  if (inodes_.local_count() == 0) return {};
  for (auto& v : inodes_.Under(dir.ino))  // files created here and not uploaded yet
    if (v.local && v.version.etag.empty())
      if (auto d = open_->Dirty(v.ino); d && !d->discarded())
        return MakeError(Errc::kNotEmpty, "directory not empty");
  return {};
}

Result<void> Filesystem::Rmdir(uint64_t parent, std::string_view name) {
  if (!options_.writable) return MakeError(Errc::kReadOnly, "read-only mount");
  auto child = Resolve(parent, name);
  if (!child) return tl::unexpected(child.error());
  if (!child->is_dir) return MakeError(Errc::kNotDir, "not a directory");
  if (auto r = CheckEmptyDir(*child); !r) return r;
  if (auto r = store_->Delete(child->key); !r) return r;
  if (records_) records_->Forget(child->key);
  inodes_.Unlink(parent, name);
  TouchDir(parent);
  return {};
}

Result<void> Filesystem::Unlink(uint64_t parent, std::string_view name) {
  if (!options_.writable) return MakeError(Errc::kReadOnly, "read-only mount");
  auto child = Resolve(parent, name);
  if (!child) return tl::unexpected(child.error());
  if (child->is_dir) return MakeError(Errc::kIsDir, "is a directory");
  if (auto d = open_->Dirty(child->ino)) d->Discard();
  const bool deferred = !child->version.etag.empty() &&
                        open_->DeferDeleteIfHeld(child->ino, child->key, child->version.etag);
  if (!deferred && !child->version.etag.empty())
    if (auto r = store_->Delete(child->key); !r) return r;
  inodes_.Unlink(parent, name);
  RecordRemoved(parent, name);
  TouchDir(parent);
  return {};
}

Result<void> Filesystem::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                                std::string_view new_name, unsigned flags) {
  if (!options_.writable) return MakeError(Errc::kReadOnly, "read-only mount");
  if (flags & RENAME_EXCHANGE)
    return MakeError(Errc::kNotSupported, "RENAME_EXCHANGE cannot be done on an object store");
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE))
    return MakeError(Errc::kInvalidArgument, "unknown rename flags");
  auto src = Resolve(parent, name);
  if (!src) return tl::unexpected(src.error());
  auto np = inodes_.Get(new_parent);
  if (!np) return MakeError(Errc::kNotFound, "stale parent inode");
  if (parent == new_parent && name == new_name) return {};
  auto dst = Resolve(new_parent, new_name);
  if (!dst && dst.error().code != Errc::kNotFound) return tl::unexpected(dst.error());
  if (np->key.size() + new_name.size() > kMaxKey)
    return MakeError(Errc::kNameTooLong, "the new key would be longer than S3's 1,024 bytes");
  if (dst) {
    if (flags & RENAME_NOREPLACE) return MakeError(Errc::kExists, "target exists");
    if (dst->is_dir && !src->is_dir) return MakeError(Errc::kIsDir, "target is a directory");
    if (!dst->is_dir && src->is_dir) return MakeError(Errc::kNotDir, "target is not a directory");
    if (dst->is_dir) {
      if (auto r = CheckEmptyDir(*dst); !r) return r;
    }
  }
  if (src->is_dir) {
    if (src->key.empty() || np->key.compare(0, src->key.size(), src->key) == 0)
      return MakeError(Errc::kInvalidArgument, "cannot move a directory into itself");
    if (auto r = RenameDir(*src, np->key + std::string(new_name) + "/"); !r) return r;
    if (records_) records_->MoveTree(src->key, np->key + std::string(new_name) + "/");
    if (dst && dst->is_dir) (void)store_->Delete(dst->key);  // the replaced empty directory
    inodes_.Rename(parent, name, new_parent, new_name);
    TouchDir(parent);
    TouchDir(new_parent);
    return {};
  }
  // A file: save unsaved bytes first, then copy and delete.
  if (dst && !dst->version.etag.empty()) PreserveForReaders(*dst);
  auto dirty = open_->Dirty(src->ino);
  if (dirty && dirty->dirty())
    if (auto r = CommitInode(src->ino, dirty.get()); !r) return r;
  auto v = inodes_.Get(src->ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  std::string to = np->key + std::string(new_name);
  auto etag = CopyObject(v->key, v->version.etag, v->version.size, to);
  if (!etag) {
    if (etag.error().code == Errc::kPreconditionFailed) inodes_.MarkStale(src->ino);
    return tl::unexpected(etag.error());
  }
  if (dst) {
    if (auto d = open_->Dirty(dst->ino)) d->Discard();  // the replaced file's unsaved bytes
  }
  // Readers of the old name keep their bytes until they close; the
  // handles follow the inode to its new key.
  const bool deferred = open_->DeferDeleteIfHeld(src->ino, v->key, v->version.etag);
  if (!deferred)
    if (auto r = store_->Delete(v->key); !r)
      LOG_WARN("rename: the old object '%s' could not be deleted: %s", v->key.c_str(),
               r.error().ToString().c_str());
  inodes_.Rename(parent, name, new_parent, new_name);
  TouchDir(parent);
  TouchDir(new_parent);
  s3::ObjectInfo info;
  info.key = to;
  info.size = v->version.size;
  info.etag = *etag;
  info.mtime_ns = v->version.mtime_ns;
  info.has_meta = v->version.posix_known;
  if (info.has_meta) meta::StorePosixMeta(v->version.posix, &info.meta);
  inodes_.RefreshFile(src->ino, info);
  RecordRemoved(parent, name);
  RecordChanged(src->ino);
  if (dirty) dirty->Rekey(to, *etag);
  return {};
}

// This mount added or removed an entry: the directory's mtime and ctime
// move (locally: other clients' changes do not, and nothing is stored).
// Only once the marker's attributes are known, so they are never skipped.
void Filesystem::TouchDir(uint64_t dir) {
  auto v = inodes_.Get(dir);
  if (v && (v->version.posix_known || v->key.empty())) inodes_.TouchMtime(dir, RealtimeNs());
}

// The object a rename is about to replace is open: copy it aside (a server
// copy), so its readers go on reading the version they opened, as POSIX
// promises. The copy is deleted at the last close.
void Filesystem::PreserveForReaders(const meta::InodeView& v) {
  if (!open_->Held(v.ino)) return;
  std::string aside = options_.root_prefix + std::string(kPreservedDir) + "/" +
                      std::to_string(mount_time_ns_) + "-" + std::to_string(v.version.id);
  auto etag = CopyObject(v.key, v.version.etag, v.version.size, aside);
  if (!etag) {
    LOG_WARN("rename over '%s': its open readers will see ESTALE (no copy aside: %s)",
             v.key.c_str(), etag.error().ToString().c_str());
    return;
  }
  open_->KeepAside(v.ino, v.version.id, aside, *etag);
}

// Every key under the directory is copied to the new prefix, then the old
// ones are deleted: a crash half-way leaves both trees (never neither).
Result<void> Filesystem::RenameDir(const meta::InodeView& dir, const std::string& new_prefix) {
  for (auto& v : inodes_.Under(dir.ino))
    if (auto d = open_->Dirty(v.ino); d && d->dirty())
      if (auto r = CommitInode(v.ino, d.get()); !r) return r;
  std::vector<s3::ObjectInfo> keys;
  s3::ListRequest lr;
  lr.prefix = dir.key;
  for (;;) {
    auto page = store_->List(lr);
    if (!page) return tl::unexpected(page.error());
    for (auto& o : page->objects) keys.push_back(std::move(o));
    if (page->next_token.empty()) break;
    lr.continuation_token = page->next_token;
  }
  bool has_marker = std::any_of(keys.begin(), keys.end(),
                                [&](const s3::ObjectInfo& o) { return o.key == dir.key; });
  std::vector<std::string> etags(keys.size());
  auto copied =
      ForEachParallel(keys.size(), [&](size_t i, const std::function<void(Result<void>)>& done) {
        std::string to = new_prefix + keys[i].key.substr(dir.key.size());
        if (keys[i].size > kMaxCopyObject) {  // rare: do it inline, it copies by parts itself
          auto e = CopyObject(keys[i].key, keys[i].etag, keys[i].size, to);
          if (e) etags[i] = *e;
          return done(e ? Result<void>() : Result<void>(tl::unexpected(e.error())));
        }
        store_->CopyAsync(keys[i].key, keys[i].etag, to, nullptr,
                          [&etags, i, done](Result<std::string> e) {
                            if (e) etags[i] = *e;
                            done(e ? Result<void>() : Result<void>(tl::unexpected(e.error())));
                          });
      });
  if (!copied) return copied;
  if (!has_marker) {  // the new directory must exist even if it holds nothing yet
    s3::PutRequest put;
    put.key = new_prefix;
    meta::StorePosixMeta(EffectivePosix(dir), &put.meta);
    if (auto r = store_->Put(std::move(put)); !r) return tl::unexpected(r.error());
  }
  auto deleted =
      ForEachParallel(keys.size(), [&](size_t i, std::function<void(Result<void>)> done) {
        store_->DeleteAsync(keys[i].key, std::move(done));
      });
  if (!deleted)
    LOG_WARN("rename of '%s': some old keys remain: %s", dir.key.c_str(),
             deleted.error().ToString().c_str());
  // Open write states follow their files to the new keys.
  std::unordered_map<std::string, uint64_t> known;  // old key -> inode, for the write states
  for (auto& v : inodes_.Under(dir.ino)) known.emplace(v.key, v.ino);
  for (size_t i = 0; i < keys.size(); ++i)
    if (auto k = known.find(keys[i].key); k != known.end())
      if (auto d = open_->Dirty(k->second))
        d->Rekey(new_prefix + keys[i].key.substr(dir.key.size()), etags[i]);
  return {};
}

Result<Entry> Filesystem::Symlink(std::string_view target, uint64_t parent, std::string_view name,
                                  Caller who) {
  auto p = ParentForNew(parent, name);
  if (!p) return tl::unexpected(p.error());
  meta::PosixMeta posix;
  posix.mode = S_IFLNK | 0777;
  posix.uid = who.uid;
  posix.gid = who.gid;
  posix.mtime_ns = posix.ctime_ns = RealtimeNs();
  s3::PutRequest put;
  put.key = p->key + std::string(name);
  put.body.emplace_back(reinterpret_cast<const std::byte*>(target.data()), target.size());
  meta::StorePosixMeta(posix, &put.meta);
  s3::ObjectInfo info;
  info.key = put.key;
  info.size = target.size();
  info.meta = put.meta;
  info.has_meta = true;
  info.mtime_ns = posix.mtime_ns;
  auto etag = store_->Put(std::move(put));
  if (!etag) return tl::unexpected(etag.error());
  info.etag = *etag;
  uint64_t ino = inodes_.UpsertFile(parent, name, info);
  inodes_.RefreshFile(ino, info);
  inodes_.SetLinkTarget(ino, info.etag, std::string(target));
  RecordChanged(ino);
  TouchDir(parent);
  return MakeEntry(ino);
}

Result<std::string> Filesystem::Readlink(uint64_t ino) {
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  if (v->is_dir || (v->version.posix.mode & S_IFMT) != S_IFLNK)
    return MakeError(Errc::kInvalidArgument, "not a symbolic link");
  if (!v->version.link_target.empty()) return v->version.link_target;  // the record, or ours
  if (v->version.size > 4096) return MakeError(Errc::kNameTooLong, "symlink target too long");
  std::string target(v->version.size, '\0');
  s3::GetRequest get;
  get.key = v->key;
  get.length = v->version.size;
  get.if_match = v->version.etag;
  get.into.emplace_back(reinterpret_cast<std::byte*>(target.data()), target.size());
  if (auto r = store_->Get(std::move(get)); !r) return tl::unexpected(r.error());
  inodes_.SetLinkTarget(ino, v->version.etag, target);
  return target;
}

}  // namespace s3rdmafs::fs
