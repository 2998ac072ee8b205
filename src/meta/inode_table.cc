#include "s3rdmafs/meta/inode_table.h"

namespace s3rdmafs::meta {

namespace {
// Negative entries are a hint; past this many we drop them all rather than
// let a scan of missing names grow memory without bound.
constexpr size_t kMaxNegativeEntries = 65536;
}  // namespace

InodeTable::InodeTable(std::string root_prefix, Ttls ttls) : ttls_(ttls) {
  auto root = std::make_unique<Inode>();
  root->ino = kRootIno;
  root->parent = kRootIno;
  root->key = std::move(root_prefix);
  root->is_dir = true;
  root->nlookup = 1;  // the kernel holds the root for the whole mount
  inodes_.emplace(kRootIno, std::move(root));
}

std::string InodeTable::ChildKey(uint64_t parent, std::string_view name) {
  std::string k(reinterpret_cast<const char*>(&parent), sizeof parent);
  k.append(name);
  return k;
}

InodeView InodeTable::ViewLocked(const Inode& n, Clock::time_point now) const {
  InodeView v;
  v.ino = n.ino;
  v.is_dir = n.is_dir;
  v.key = n.key;
  v.version = n.version;
  v.attr_fresh = n.is_dir || n.attr_expiry > now;
  v.last_opened_version = n.last_opened_version;
  return v;
}

std::optional<InodeView> InodeTable::Get(uint64_t ino) const {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return std::nullopt;
  return ViewLocked(*it->second, Clock::now());
}

std::optional<InodeView> InodeTable::FreshChild(uint64_t parent, std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = children_.find(ChildKey(parent, name));
  if (it == children_.end()) return std::nullopt;
  const Inode& n = *inodes_.at(it->second);
  auto now = Clock::now();
  if (n.entry_expiry <= now) return std::nullopt;
  return ViewLocked(n, now);
}

bool InodeTable::IsNegative(uint64_t parent, std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = negative_.find(ChildKey(parent, name));
  return it != negative_.end() && it->second > Clock::now();
}

void InodeTable::AddNegative(uint64_t parent, std::string_view name) {
  std::lock_guard lock(mu_);
  if (negative_.size() >= kMaxNegativeEntries) negative_.clear();
  negative_[ChildKey(parent, name)] = Clock::now() + ttls_.negative;
}

uint64_t InodeTable::UpsertLocked(uint64_t parent, std::string_view name, bool is_dir,
                                  const s3::ObjectInfo* info) {
  auto now = Clock::now();
  std::string ck = ChildKey(parent, name);
  negative_.erase(ck);
  Inode* n = nullptr;
  auto it = children_.find(ck);
  if (it != children_.end()) {
    n = inodes_.at(it->second).get();
    if (n->is_dir != is_dir) {  // a file became a directory or back: new inode
      children_.erase(it);
      n = nullptr;
    }
  }
  if (!n) {
    const Inode& p = *inodes_.at(parent);
    auto fresh = std::make_unique<Inode>();
    fresh->ino = next_ino_++;
    fresh->parent = parent;
    fresh->name = std::string(name);
    fresh->key = p.key + std::string(name) + (is_dir ? "/" : "");
    fresh->is_dir = is_dir;
    n = fresh.get();
    inodes_.emplace(n->ino, std::move(fresh));
    children_[ck] = n->ino;
  }
  if (info) {
    if (n->version.id == 0 || n->version.etag != info->etag) n->version.id = next_version_++;
    n->version.etag = info->etag;
    n->version.size = info->size;
    n->version.mtime_ns = info->mtime_ns;
  }
  n->attr_expiry = now + ttls_.attr;
  n->entry_expiry = now + ttls_.entry;
  return n->ino;
}

uint64_t InodeTable::UpsertFile(uint64_t parent, std::string_view name,
                                const s3::ObjectInfo& info) {
  std::lock_guard lock(mu_);
  return UpsertLocked(parent, name, false, &info);
}

uint64_t InodeTable::UpsertDir(uint64_t parent, std::string_view name) {
  std::lock_guard lock(mu_);
  return UpsertLocked(parent, name, true, nullptr);
}

void InodeTable::RefreshFile(uint64_t ino, const s3::ObjectInfo& info) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  Inode& n = *it->second;
  if (n.version.id == 0 || n.version.etag != info.etag) n.version.id = next_version_++;
  n.version.etag = info.etag;
  n.version.size = info.size;
  n.version.mtime_ns = info.mtime_ns;
  n.attr_expiry = Clock::now() + ttls_.attr;
}

void InodeTable::MarkStale(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it != inodes_.end()) {
    it->second->attr_expiry = Clock::time_point::min();
    it->second->entry_expiry = Clock::time_point::min();
  }
}

void InodeTable::SetLastOpened(uint64_t ino, uint64_t version_id) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it != inodes_.end()) it->second->last_opened_version = version_id;
}

void InodeTable::IncLookup(uint64_t ino, uint64_t n) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it != inodes_.end()) it->second->nlookup += n;
}

void InodeTable::RemoveLocked(Inode* n) {
  auto it = children_.find(ChildKey(n->parent, n->name));
  if (it != children_.end() && it->second == n->ino) children_.erase(it);
  inodes_.erase(n->ino);
}

void InodeTable::Forget(uint64_t ino, uint64_t count) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end() || ino == kRootIno) return;
  Inode* n = it->second.get();
  n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
  if (n->nlookup == 0) RemoveLocked(n);
}

void InodeTable::DropIfUnreferenced(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it != inodes_.end() && ino != kRootIno && it->second->nlookup == 0)
    RemoveLocked(it->second.get());
}

size_t InodeTable::size() const {
  std::lock_guard lock(mu_);
  return inodes_.size();
}

}  // namespace s3rdmafs::meta
