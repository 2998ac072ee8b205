// The write path: create, write, flush/fsync (publish), setattr. The bytes
// live in a DirtyFile per inode (src/fs/dirty_file.h) until a commit turns
// them into one object; attributes ride along as s3fs-style x-amz-meta-*.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

#include "open_files.h"
#include "s3rdmafs/common/clock.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {

// `ours` over what the object had: other tools' x-amz-meta-* and the
// standard headers (":content-type", ...) stay.
static s3::Metadata KeepOthers(const s3::Metadata& had, const s3::Metadata& ours) {
  s3::Metadata out = had;
  for (auto& [k, v] : ours) out[k] = v;
  return out;
}

Result<void> Filesystem::CommitInode(uint64_t ino, DirtyFile* d) {
  if (d->discarded() || !d->dirty()) return {};  // nothing new to publish
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  s3::Metadata meta = MetaFor(*v);
  auto r = d->Commit(meta);
  if (!r) {
    LOG_ERROR("'%s' not saved (%llu bytes; the server keeps its previous version): %s",
              v->key.c_str(), static_cast<unsigned long long>(d->size()),
              r.error().ToString().c_str());
    return tl::unexpected(r.error());
  }
  s3::ObjectInfo info;
  info.key = v->key;
  info.size = r->size;
  info.etag = r->etag;
  info.mtime_ns = RealtimeNs();
  info.meta = std::move(meta);
  info.has_meta = true;
  inodes_.RefreshFile(ino, info);
  RecordChanged(ino);
  LOG_DEBUG("published '%s': %llu bytes, ETag %s", info.key.c_str(),
            static_cast<unsigned long long>(info.size), info.etag.c_str());
  return {};
}

Result<std::pair<Entry, OpenResult>> Filesystem::Create(uint64_t parent, std::string_view name,
                                                        uint32_t mode, int flags, Caller who) {
  if (!options_.writable) return MakeError(Errc::kReadOnly, "read-only mount");
  if (name.size() > 255) return MakeError(Errc::kNameTooLong, "name longer than 255 bytes");
  auto p = inodes_.Get(parent);
  if (!p) return MakeError(Errc::kNotFound, "stale parent inode");
  if (!p->is_dir) return MakeError(Errc::kNotDir, "parent is not a directory");
  if (p->key.size() + name.size() > kMaxKey)
    return MakeError(Errc::kNameTooLong, "the key would be longer than S3's 1,024 bytes");
  if (auto existing = inodes_.FreshChild(parent, name)) {
    if (flags & O_EXCL) return MakeError(Errc::kExists, "file exists");
    if (existing->is_dir) return MakeError(Errc::kIsDir, "is a directory");
    // The kernel thought the name was missing; open what is there instead.
    auto opened = Open(existing->ino, flags, who);
    if (!opened) return tl::unexpected(opened.error());
    return std::make_pair(MakeEntry(existing->ino), *opened);
  }
  // The object appears at the first flush; until then the inode is local.
  s3::ObjectInfo info;
  info.key = p->key + std::string(name);
  info.mtime_ns = RealtimeNs();
  uint64_t ino = inodes_.UpsertFile(parent, name, info);
  TouchDir(parent);
  meta::PosixMeta posix;
  posix.mode = S_IFREG | (mode & 07777);
  posix.uid = who.uid;
  posix.gid = who.gid;
  posix.mtime_ns = posix.ctime_ns = info.mtime_ns;
  inodes_.SetPosix(ino, posix);
  auto v = inodes_.Get(ino);
  auto dirty = std::make_shared<DirtyFile>(write_ctx_.get(), v->key);
  dirty->SetMeta(MetaFor(*v));
  if (flags & O_EXCL) dirty->SetCondition({"", true});  // two machines cannot both create it
  open_->Attach(ino, dirty);                            // a new inode: nothing there yet
  inodes_.SetLocal(ino, true);
  auto opened = Open(ino, (flags & ~O_TRUNC) | O_WRONLY, who);
  if (!opened) return tl::unexpected(opened.error());
  return std::make_pair(MakeEntry(ino), *opened);
}

Result<Entry> Filesystem::Mknod(uint64_t parent, std::string_view name, uint32_t mode,
                                uint64_t rdev, Caller who) {
  const uint32_t type = mode & S_IFMT;
  if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK)
    return MakeError(Errc::kInvalidArgument, "mknod of an unknown file type");
  auto made = Create(parent, name, mode, O_CREAT | O_EXCL | O_WRONLY, who);
  if (!made) return tl::unexpected(made.error());
  const uint64_t fh = made->second.fh;
  if (type != S_IFREG) {  // the object's mode says what it is
    const uint64_t ino = made->first.attr.ino;
    auto v = inodes_.Get(ino);
    meta::PosixMeta p = EffectivePosix(*v);
    p.mode = type | (mode & 07777);
    if (type == S_IFCHR || type == S_IFBLK) p.rdev = rdev;
    inodes_.SetPosix(ino, p);
    if (auto d = open_->Dirty(ino)) d->SetMeta(MetaFor(*inodes_.Get(ino)));
  }
  auto saved = Flush(fh, who);
  Release(fh);
  if (!saved) return tl::unexpected(saved.error());
  return MakeEntry(made->first.attr.ino);
}

Result<size_t> Filesystem::Write(uint64_t fh, uint64_t offset, std::span<const std::byte> data) {
  std::shared_ptr<FileHandle> h = open_->File(fh);
  if (!h) return MakeError(Errc::kInvalidArgument, "bad file handle");
  if (!h->writable || !h->dirty)
    return MakeError(Errc::kInvalidArgument, "file handle not open for writing");
  if (auto r = h->dirty->Write(offset, data); !r) return tl::unexpected(r.error());
  inodes_.TouchMtime(h->ino, RealtimeNs());  // stored with the object at commit
  return data.size();
}

Result<void> Filesystem::Flush(uint64_t fh, Caller who) {
  std::shared_ptr<FileHandle> h = open_->File(fh);
  if (!h) return MakeError(Errc::kInvalidArgument, "bad file handle");
  if (!h->writable || !h->dirty) return {};
  // A forked child closing the descriptor it inherited (every subprocess
  // spawn does) is not the writer saying "done": the last close or the
  // opener's close publishes.
  if (who.process && h->opener && who.process != h->opener) return {};
  auto r = CommitInode(h->ino, h->dirty.get());
  h->dirty->SetCloseFailed(!r);  // said to the writer: no release saves it behind its back
  return r;
}

Result<void> Filesystem::Fsync(uint64_t fh) { return Flush(fh); }

Result<Attributes> Filesystem::SetAttr(uint64_t ino, const SetAttrRequest& req) {
  if (!inodes_.Get(ino)) return MakeError(Errc::kNotFound, "stale inode");
  bool changes = req.size || req.mode || req.uid || req.gid || req.mtime_ns || req.atime_ns;
  if (changes && !options_.writable) return MakeError(Errc::kReadOnly, "read-only mount");
  // Held, so that a change to a write state is saved by whoever holds it
  // last - this call, when the last handle closed meanwhile.
  auto changed = SetAttrHeld(ino, req, open_->Hold(ino));
  auto saved = DropHold(ino);
  if (!changed) return tl::unexpected(changed.error());
  if (!saved) return tl::unexpected(saved.error());
  return GetAttr(ino);
}

Result<void> Filesystem::SetAttrHeld(uint64_t ino, const SetAttrRequest& req,
                                     const std::shared_ptr<DirtyFile>& dirty) {
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  if (req.size) {
    if (v->is_dir) return MakeError(Errc::kIsDir, "is a directory");
    if (dirty) {
      if (auto r = dirty->Truncate(*req.size); !r) return tl::unexpected(r.error());
      inodes_.TouchMtime(ino, RealtimeNs());  // stored with the object at commit
    } else {
      // truncate(2) of a file nobody has open: edit, publish, done.
      auto fresh = Refresh(*v);
      if (!fresh) return tl::unexpected(fresh.error());
      DirtyFile temp(write_ctx_.get(), fresh->key, fresh->version.etag, fresh->version.size);
      if (options_.detect_conflicts) temp.SetCondition({fresh->version.etag, false});
      if (auto r = temp.Truncate(*req.size); !r) return tl::unexpected(r.error());
      meta::PosixMeta p = fresh->version.posix;
      p.mtime_ns = p.ctime_ns = RealtimeNs();
      inodes_.SetPosix(ino, p);
      if (auto r = CommitInode(ino, &temp); !r) return tl::unexpected(r.error());
    }
  }
  if (req.mode || req.uid || req.gid || req.mtime_ns || req.atime_ns) {
    auto now = inodes_.Get(ino);
    if (!now) return MakeError(Errc::kNotFound, "stale inode");
    meta::PosixMeta p = EffectivePosix(*now);
    if (req.mode) p.mode = (p.mode & S_IFMT) | (*req.mode & 07777);
    if (req.uid) p.uid = *req.uid;
    if (req.gid) p.gid = *req.gid;
    if (req.mtime_ns) p.mtime_ns = *req.mtime_ns;
    if (req.atime_ns) p.atime_ns = *req.atime_ns;
    p.ctime_ns = RealtimeNs();  // every attribute change is a status change
    inodes_.SetPosix(ino, p);
    now = inodes_.Get(ino);
    s3::Metadata meta = MetaFor(*now);
    if (dirty && dirty->dirty()) {
      dirty->SetMeta(meta);  // the commit carries it
    } else if (now->is_dir) {
      if (!now->key.empty()) {  // the marker keeps a directory's attributes
        s3::PutRequest put;
        put.key = now->key;
        put.meta = meta;
        if (auto old = store_->Head(now->key)) put.meta = KeepOthers(old->meta, meta);
        if (auto r = store_->Put(std::move(put)); !r) return tl::unexpected(r.error());
      }
    } else if (!now->version.etag.empty()) {
      // A metadata-only change: the server copies the object onto itself,
      // with every header and x-amz-meta-* it had that is not ours.
      auto old = store_->Head(now->key);
      if (!old) return tl::unexpected(old.error());
      if (old->etag != now->version.etag) {
        inodes_.MarkStale(ino);
        return MakeError(Errc::kPreconditionFailed, "'" + now->key + "' changed on the server");
      }
      meta = KeepOthers(old->meta, meta);
      auto etag = CopyObject(now->key, now->version.etag, now->version.size, now->key, &meta);
      if (!etag) {
        if (etag.error().code == Errc::kPreconditionFailed) inodes_.MarkStale(ino);
        return tl::unexpected(etag.error());
      }
      s3::ObjectInfo info;
      info.key = now->key;
      info.size = now->version.size;
      info.etag = *etag;
      info.mtime_ns = now->version.mtime_ns;
      info.meta = meta;
      info.has_meta = true;
      inodes_.RefreshFile(ino, info);
      RecordChanged(ino);
      if (dirty) dirty->Rekey(now->key, *etag);
    }
  }
  return {};
}

Result<ReadReply> Filesystem::ReadDirty(DirtyFile* d, uint64_t offset, size_t size) {
  ReadReply reply;
  reply.owned.resize(size);
  auto n = d->Read(offset, reply.owned);
  if (!n) return tl::unexpected(n.error());
  reply.owned.resize(*n);
  reply.bytes = *n;
  if (*n) reply.iov.push_back({reply.owned.data(), *n});
  return reply;
}

}  // namespace s3rdmafs::fs
