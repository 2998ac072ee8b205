#include "s3rdmafs/fs/filesystem.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <future>

#include "handles.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {

Filesystem::Filesystem(FsOptions options, s3::ObjectStore* store, fetch::RangeFetcher* fetcher,
                       cache::BlockCache* cache)
    : options_(std::move(options)),
      store_(store),
      fetcher_(fetcher),
      cache_(cache),
      inodes_(options_.root_prefix, options_.ttls) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  mount_time_ns_ = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Filesystem::~Filesystem() = default;

double Filesystem::negative_timeout() const { return options_.ttls.negative.count() / 1000.0; }
double Filesystem::attr_timeout() const { return options_.ttls.attr.count() / 1000.0; }

Attributes Filesystem::ToAttributes(const meta::InodeView& v) const {
  Attributes a;
  a.ino = v.ino;
  a.is_dir = v.is_dir;
  a.uid = options_.uid;
  a.gid = options_.gid;
  if (v.is_dir) {
    a.mode = S_IFDIR | options_.dir_mode;
    a.nlink = 2;
    a.size = 4096;
    a.mtime_ns = mount_time_ns_;
  } else {
    a.mode = S_IFREG | options_.file_mode;
    a.size = v.version.size;
    a.mtime_ns = v.version.mtime_ns;
  }
  return a;
}

Result<Entry> Filesystem::Lookup(uint64_t parent, std::string_view name) {
  if (name.size() > 255) return MakeError(Errc::kNameTooLong, "name longer than 255 bytes");
  auto p = inodes_.Get(parent);
  if (!p) return MakeError(Errc::kNotFound, "stale parent inode");
  if (!p->is_dir) return MakeError(Errc::kNotDir, "parent is not a directory");
  Entry e;
  e.entry_timeout = options_.ttls.entry.count() / 1000.0;
  e.attr_timeout = attr_timeout();
  if (auto child = inodes_.FreshChild(parent, name)) {
    inodes_.IncLookup(child->ino);
    e.attr = ToAttributes(*child);
    return e;
  }
  if (inodes_.IsNegative(parent, name)) return MakeError(Errc::kNotFound, "cached negative entry");

  // A name is a directory if anything lives under "name/" (directories win
  // over a same-named object, as in other S3 mounts); else a file if the
  // object exists. Both questions go out at once.
  std::string key = p->key + std::string(name);
  std::promise<Result<s3::ObjectInfo>> head_p;
  std::promise<Result<s3::ListPage>> list_p;
  store_->HeadAsync(key, [&head_p](Result<s3::ObjectInfo> r) { head_p.set_value(std::move(r)); });
  s3::ListRequest lr;
  lr.prefix = key + "/";
  lr.delimiter = "/";
  lr.max_keys = 1;
  store_->ListAsync(lr, [&list_p](Result<s3::ListPage> r) { list_p.set_value(std::move(r)); });
  Result<s3::ObjectInfo> head = head_p.get_future().get();
  Result<s3::ListPage> list = list_p.get_future().get();

  if (!list) return tl::unexpected(list.error());
  uint64_t ino;
  if (!list->objects.empty() || !list->common_prefixes.empty()) {
    ino = inodes_.UpsertDir(parent, name);
  } else if (head) {
    ino = inodes_.UpsertFile(parent, name, *head);
  } else if (head.error().code == Errc::kNoSuchKey) {
    inodes_.AddNegative(parent, name);
    return MakeError(Errc::kNotFound, "no such key");
  } else {
    return tl::unexpected(head.error());
  }
  inodes_.IncLookup(ino);
  auto v = inodes_.Get(ino);
  e.attr = ToAttributes(*v);
  return e;
}

void Filesystem::Forget(uint64_t ino, uint64_t nlookup) { inodes_.Forget(ino, nlookup); }

Result<meta::InodeView> Filesystem::Refresh(const meta::InodeView& v) {
  if (v.is_dir || v.attr_fresh) return v;
  auto head = store_->Head(v.key);
  if (!head) {
    if (head.error().code == Errc::kNoSuchKey) {
      inodes_.MarkStale(v.ino);
      return MakeError(Errc::kNotFound, "object '" + v.key + "' is gone");
    }
    return tl::unexpected(head.error());
  }
  inodes_.RefreshFile(v.ino, *head);
  auto fresh = inodes_.Get(v.ino);
  if (!fresh) return MakeError(Errc::kNotFound, "inode forgotten");
  return *fresh;
}

Result<Attributes> Filesystem::GetAttr(uint64_t ino) {
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  auto fresh = Refresh(*v);
  if (!fresh) return tl::unexpected(fresh.error());
  return ToAttributes(*fresh);
}

Result<OpenResult> Filesystem::Open(uint64_t ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
    return MakeError(Errc::kReadOnly, "read-only mount");
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  if (v->is_dir) return MakeError(Errc::kIsDir, "is a directory");
  // Close-to-open: an open re-validates attributes whose TTL has run out, so
  // a reader sees the version that existed when it opened.
  auto fresh = Refresh(*v);
  if (!fresh) return tl::unexpected(fresh.error());
  auto h = std::make_shared<FileHandle>();
  h->ino = ino;
  h->key = fresh->key;
  h->version = fresh->version;
  OpenResult out;
  out.keep_cache = fresh->last_opened_version == fresh->version.id;
  out.direct_io = options_.direct_io;
  inodes_.SetLastOpened(ino, fresh->version.id);
  std::lock_guard lock(handles_mu_);
  auto& weak = read_states_[h->version.id];
  h->read_state = weak.lock();
  if (!h->read_state) {
    h->read_state = std::make_shared<ReadState>(options_.readahead);
    weak = h->read_state;
  }
  out.fh = next_fh_++;
  files_.emplace(out.fh, std::move(h));
  return out;
}

void Filesystem::Release(uint64_t fh) {
  std::lock_guard lock(handles_mu_);
  auto it = files_.find(fh);
  if (it == files_.end()) return;
  uint64_t version = it->second->version.id;
  files_.erase(it);
  auto rs = read_states_.find(version);
  if (rs != read_states_.end() && rs->second.expired()) read_states_.erase(rs);
}

FsStats Filesystem::StatFs() const {
  FsStats s;
  s.block_size = cache_->block_size();
  s.blocks = cache_->Stats().blocks_total;
  s.inodes = inodes_.size();
  return s;
}

}  // namespace s3rdmafs::fs
