#include "open_files.h"

namespace s3rdmafs::fs {
namespace {
// The handle or write state under `id`, or null.
template <class Map>
typename Map::mapped_type Find(const Map& map, uint64_t id) {
  auto it = map.find(id);
  return it == map.end() ? nullptr : it->second;
}
}  // namespace

uint64_t OpenFiles::AddFile(std::shared_ptr<FileHandle> h) {
  std::lock_guard lock(mu_);
  auto& weak = read_states_[h->version.id];
  h->read_state = weak.lock();
  if (!h->read_state) {
    h->read_state = std::make_shared<ReadState>(readahead_);
    weak = h->read_state;
  }
  if (h->writable) ++writers_[h->ino];
  return Insert(files_, std::move(h));
}

std::shared_ptr<FileHandle> OpenFiles::File(uint64_t fh) const {
  std::lock_guard lock(mu_);
  return Find(files_, fh);
}

OpenFiles::TakenFile OpenFiles::TakeFile(uint64_t fh) {
  std::lock_guard lock(mu_);
  TakenFile out;
  auto it = files_.find(fh);
  if (it == files_.end()) return out;
  out.handle = std::move(it->second);
  files_.erase(it);
  if (out.handle->writable) {
    auto w = writers_.find(out.handle->ino);
    if (--w->second == 0)
      writers_.erase(w);
    else
      out.others_write = true;
  }
  return out;
}

void OpenFiles::FinishedReading(FileHandle& h) {
  std::lock_guard lock(mu_);
  h.read_state.reset();
  auto rs = read_states_.find(h.version.id);
  if (rs != read_states_.end() && rs->second.expired()) read_states_.erase(rs);
}

OpenFiles::ReadTarget OpenFiles::ReadTargetOf(const FileHandle& h) const {
  std::lock_guard lock(mu_);
  ReadTarget t{h.key, h.version, false};
  auto a = aside_.find(h.ino);
  if (a != aside_.end() && a->second.version_id == t.version.id) {
    t.key = a->second.key;
    t.version.etag = a->second.etag;
    t.aside = true;
  }
  return t;
}

void OpenFiles::SetVersion(FileHandle& h, const meta::ObjectVersion& version) {
  std::lock_guard lock(mu_);
  h.version = version;
}

uint64_t OpenFiles::AddDir(std::shared_ptr<DirHandle> d) {
  std::lock_guard lock(mu_);
  return Insert(dirs_, std::move(d));
}

std::shared_ptr<DirHandle> OpenFiles::Dir(uint64_t dh) const {
  std::lock_guard lock(mu_);
  return Find(dirs_, dh);
}

void OpenFiles::DropDir(uint64_t dh) {
  std::lock_guard lock(mu_);
  dirs_.erase(dh);
}

std::shared_ptr<DirtyFile> OpenFiles::Dirty(uint64_t ino) const {
  std::lock_guard lock(mu_);
  return Find(writes_, ino);
}

std::shared_ptr<DirtyFile> OpenFiles::Hold(uint64_t ino) {
  std::lock_guard lock(mu_);
  ++holds_[ino];
  auto it = writes_.find(ino);
  return it == writes_.end() ? nullptr : it->second;
}

std::shared_ptr<DirtyFile> OpenFiles::Attach(uint64_t ino, std::shared_ptr<DirtyFile> made) {
  std::lock_guard lock(mu_);
  return writes_.emplace(ino, std::move(made)).first->second;
}

OpenFiles::LastClose OpenFiles::Release(uint64_t ino, bool may_save) {
  LastClose out;
  std::lock_guard lock(mu_);
  auto n = holds_.find(ino);
  if (n == holds_.end()) return out;
  if (n->second > 1) {
    --n->second;  // another hold saves or drops it
    return out;
  }
  auto w = writes_.find(ino);
  const bool unsaved = w != writes_.end() && w->second->dirty() && !w->second->discarded() &&
                       !w->second->close_failed();
  if (unsaved && may_save) {
    out.save = w->second;  // the hold stays across the commit: nobody drops it meanwhile
    return out;
  }
  out.last = true;
  holds_.erase(n);
  if (w != writes_.end()) {
    out.dropped = std::move(w->second);
    writes_.erase(w);
  }
  aside_.erase(ino);
  auto d = deferred_deletes_.find(ino);
  if (d != deferred_deletes_.end()) {
    out.deferred_delete = std::move(d->second);
    deferred_deletes_.erase(d);
  }
  return out;
}

bool OpenFiles::DeferDeleteIfHeld(uint64_t ino, const std::string& key, const std::string& etag) {
  std::lock_guard lock(mu_);
  if (!holds_.count(ino)) return false;
  deferred_deletes_[ino] = {key, etag};
  return true;
}

bool OpenFiles::Held(uint64_t ino) const {
  std::lock_guard lock(mu_);
  return holds_.count(ino) != 0;
}

void OpenFiles::KeepAside(uint64_t ino, uint64_t version_id, const std::string& key,
                          const std::string& etag) {
  std::lock_guard lock(mu_);
  aside_[ino] = Aside{version_id, key, etag};
  deferred_deletes_[ino] = {key, etag};
}

void OpenFiles::Overlay(uint64_t ino, uint64_t* size, uint32_t* nlink) const {
  std::lock_guard lock(mu_);
  auto d = writes_.find(ino);
  if (d != writes_.end()) *size = d->second->size();
  // Unlinked, or replaced by a rename, while open: no name any more.
  if (nlink && (deferred_deletes_.count(ino) || (d != writes_.end() && d->second->discarded())))
    *nlink = 0;
}

std::unordered_set<uint64_t> OpenFiles::InUse() const {
  std::unordered_set<uint64_t> in_use;
  std::lock_guard lock(mu_);
  for (const auto& [_, h] : files_) in_use.insert(h->ino);
  for (const auto& [_, d] : dirs_) in_use.insert(d->ino);
  for (const auto& [ino, _] : writes_) in_use.insert(ino);
  for (const auto& [ino, _] : deferred_deletes_) in_use.insert(ino);
  for (const auto& [ino, _] : aside_) in_use.insert(ino);
  return in_use;
}

void OpenFiles::Clear() {
  // Destroyed outside the lock: a write state's destructor aborts its upload.
  std::unordered_map<uint64_t, std::shared_ptr<FileHandle>> files;
  std::unordered_map<uint64_t, std::shared_ptr<DirtyFile>> writes;
  {
    std::lock_guard lock(mu_);
    files.swap(files_);
    writes.swap(writes_);
    writers_.clear();
  }
}

}  // namespace s3rdmafs::fs
