#include "s3rdmafs/meta/inode_table.h"

#include <sys/stat.h>

#include <algorithm>

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
  root->nlookup = 1;                           // the kernel holds the root for the whole mount
  inodes_.emplace(kRootIno, std::move(root));  // never on the use list: never swept
}

void InodeTable::TouchLocked(const Inode& n, Clock::time_point now) const {
  if (n.ino == kRootIno) return;
  n.last_used = now;
  use_.splice(use_.end(), use_, use_.iterator_to(n));
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
  v.parent = n.parent;
  v.name = n.name;
  v.version = n.version;
  v.local = n.local;
  v.attr_fresh = n.is_dir || n.local || n.attr_expiry > now;
  v.last_opened_version = n.last_opened_version;
  v.replaced = n.replaced;
  return v;
}

std::optional<InodeView> InodeTable::Get(uint64_t ino) const {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return std::nullopt;
  auto now = Clock::now();
  TouchLocked(*it->second, now);
  return ViewLocked(*it->second, now);
}

std::optional<InodeView> InodeTable::FreshChild(uint64_t parent, std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = children_.find(ChildKey(parent, name));
  if (it == children_.end()) return std::nullopt;
  const Inode& n = *inodes_.at(it->second);
  auto now = Clock::now();
  if (n.entry_expiry <= now && !n.local) return std::nullopt;
  TouchLocked(n, now);
  return ViewLocked(n, now);
}

bool InodeTable::IsNegative(uint64_t parent, std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = negative_.find(ChildKey(parent, name));
  return it != negative_.end() && it->second > Clock::now();
}

uint64_t InodeTable::RemovalCount(uint64_t dir) const {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(dir);
  return it == inodes_.end() ? 0 : it->second->removals;
}

void InodeTable::MarkListed(uint64_t dir, uint64_t since) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(dir);
  if (it != inodes_.end() && it->second->is_dir && it->second->removals == since)
    it->second->listed_until = Clock::now() + ttls_.entry;
}

bool InodeTable::KnownAbsent(uint64_t parent, std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(parent);
  if (it == inodes_.end() || it->second->listed_until <= Clock::now()) return false;
  return children_.find(ChildKey(parent, name)) == children_.end();
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
    use_.push_back(*n);
  }
  TouchLocked(*n, now);
  if (info && !n->local) ApplyInfoLocked(n, *info);
  n->attr_expiry = now + ttls_.attr;
  n->entry_expiry = now + ttls_.entry;
  return n->ino;
}

void InodeTable::ApplyInfoLocked(Inode* n, const s3::ObjectInfo& info) {
  bool changed = n->version.id == 0 || n->version.etag != info.etag;
  if (changed) {
    n->version.id = next_version_++;
    n->version.posix_known = false;
    n->version.link_target.clear();
  }
  n->version.etag = info.etag;
  n->version.size = info.size;
  n->version.mtime_ns = info.mtime_ns;
  if (info.has_meta) {
    n->version.posix = ParsePosixMeta(info.meta);
    n->version.posix_known = true;
  } else if (changed) {
    n->version.posix = PosixMeta{};
  }
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

uint64_t InodeTable::RefreshFile(uint64_t ino, const s3::ObjectInfo& info) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return ino;
  Inode* n = it->second.get();
  if (n->type_guessed && info.has_meta) {
    n->type_guessed = false;
    const uint32_t type = ParsePosixMeta(info.meta).mode & S_IFMT;
    if (type != 0 && type != S_IFREG && type != S_IFDIR && !n->replaced) {
      n->replaced = true;
      auto name = children_.find(ChildKey(n->parent, n->name));
      if (name != children_.end() && name->second == ino) children_.erase(name);
      if (!inodes_.count(n->parent)) return ino;  // the directory is forgotten: nothing to name
      return UpsertLocked(n->parent, n->name, false, &info);
    }
  }
  ApplyInfoLocked(n, info);
  n->attr_expiry = Clock::now() + ttls_.attr;
  return ino;
}

void InodeTable::MarkTypeGuessed(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it != inodes_.end() && !it->second->version.posix_known) it->second->type_guessed = true;
}

void InodeTable::MarkStale(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it != inodes_.end()) {
    it->second->attr_expiry = Clock::time_point::min();
    it->second->entry_expiry = Clock::time_point::min();
  }
}

void InodeTable::SetPosix(uint64_t ino, const PosixMeta& posix) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  it->second->version.posix = posix;
  it->second->version.posix_known = true;
  it->second->type_guessed = false;  // ours: whatever we say it is
}

bool InodeTable::ApplyRecord(uint64_t ino, const std::string& bare_etag, uint64_t size,
                             const PosixMeta& posix, const std::string& link_target) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return false;
  Inode& n = *it->second;
  if (n.is_dir || n.local || n.version.posix_known || n.version.size != size ||
      s3::BareEtag(n.version.etag) != bare_etag || bare_etag.empty())
    return false;
  n.version.posix = posix;
  n.version.posix_known = true;
  n.version.link_target = link_target;
  return true;
}

void InodeTable::SetLinkTarget(uint64_t ino, const std::string& etag, const std::string& target) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it != inodes_.end() && it->second->version.etag == etag)
    it->second->version.link_target = target;
}

void InodeTable::TouchMtime(uint64_t ino, int64_t mtime_ns) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  it->second->version.posix.mtime_ns = mtime_ns;
  it->second->version.posix.ctime_ns = mtime_ns;  // a change of the contents is a change
  it->second->version.posix_known = true;
}

void InodeTable::SetLocal(uint64_t ino, bool local) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  if (it->second->local != local) local ? ++local_count_ : --local_count_;
  it->second->local = local;
  auto now = Clock::now();
  it->second->attr_expiry = now + ttls_.attr;
  it->second->entry_expiry = now + ttls_.entry;
}

void InodeTable::Unlink(uint64_t parent, std::string_view name) {
  std::lock_guard lock(mu_);
  std::string ck = ChildKey(parent, name);
  children_.erase(ck);
  if (negative_.size() >= kMaxNegativeEntries) negative_.clear();
  negative_[ck] = Clock::now() + ttls_.negative;
}

void InodeTable::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                        std::string_view new_name) {
  std::lock_guard lock(mu_);
  std::string from = ChildKey(parent, name), to = ChildKey(new_parent, new_name);
  auto it = children_.find(from);
  negative_.erase(to);
  children_.erase(to);
  if (it == children_.end()) return;
  uint64_t ino = it->second;
  children_.erase(it);
  if (negative_.size() >= kMaxNegativeEntries) negative_.clear();
  negative_[from] = Clock::now() + ttls_.negative;
  auto nit = inodes_.find(ino);
  auto pit = inodes_.find(new_parent);
  if (nit == inodes_.end() || pit == inodes_.end()) return;
  Inode& n = *nit->second;
  std::string old_key = n.key;
  n.parent = new_parent;
  n.name = std::string(new_name);
  n.key = pit->second->key + n.name + (n.is_dir ? "/" : "");
  children_[to] = ino;
  if (n.is_dir) {  // the subtree's keys follow (a walk of it, not of the table)
    std::vector<const Inode*> below;
    CollectUnderLocked(ino, &below);
    for (const Inode* d : below) {
      Inode& m = *inodes_.at(d->ino);
      if (m.key.compare(0, old_key.size(), old_key) == 0)
        m.key = n.key + m.key.substr(old_key.size());
    }
  }
}

void InodeTable::CollectUnderLocked(uint64_t dir, std::vector<const Inode*>* out) const {
  std::vector<uint64_t> todo{dir};
  while (!todo.empty()) {
    uint64_t d = todo.back();
    todo.pop_back();
    const std::string lo = ChildKey(d, "");
    for (auto it = children_.lower_bound(lo);
         it != children_.end() && it->first.compare(0, lo.size(), lo) == 0; ++it) {
      auto n = inodes_.find(it->second);
      if (n == inodes_.end() || n->second->ino == dir) continue;
      out->push_back(n->second.get());
      if (n->second->is_dir) todo.push_back(n->second->ino);
    }
  }
}

std::vector<InodeView> InodeTable::Under(uint64_t dir) const {
  std::lock_guard lock(mu_);
  std::vector<const Inode*> below;
  CollectUnderLocked(dir, &below);
  std::vector<InodeView> out;
  out.reserve(below.size());
  auto now = Clock::now();
  for (const Inode* n : below) out.push_back(ViewLocked(*n, now));
  return out;
}

std::vector<InodeView> InodeTable::Children(uint64_t dir) const {
  std::lock_guard lock(mu_);
  std::vector<InodeView> out;
  auto now = Clock::now();
  const std::string lo = ChildKey(dir, "");
  for (auto it = children_.lower_bound(lo);
       it != children_.end() && it->first.compare(0, lo.size(), lo) == 0; ++it)
    if (auto n = inodes_.find(it->second); n != inodes_.end() && n->second->ino != dir)
      out.push_back(ViewLocked(*n->second, now));
  return out;
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

Ttls InodeTable::ttls() const {
  std::lock_guard lock(mu_);
  return ttls_;
}

void InodeTable::SetTtls(const Ttls& ttls) {
  std::lock_guard lock(mu_);
  ttls_ = ttls;
}

size_t InodeTable::local_count() const {
  std::lock_guard lock(mu_);
  return local_count_;
}

void InodeTable::RemoveLocked(Inode* n, bool relisted_soon) {
  if (n->local) --local_count_;
  if (auto p = inodes_.find(n->parent); p != inodes_.end()) {
    p->second->listed_until = {};  // its listing no longer has every name here
    // A listing that drops an entry the kernel had no room for lists it
    // again in its next call: that does not spoil the listing in progress.
    if (!relisted_soon) ++p->second->removals;
  }
  auto it = children_.find(ChildKey(n->parent, n->name));
  if (it != children_.end() && it->second == n->ino) children_.erase(it);
  use_.erase(use_.iterator_to(*n));
  inodes_.erase(n->ino);
}

InodeTable::SweepResult InodeTable::Sweep(std::chrono::milliseconds idle, size_t max_inodes,
                                          size_t limit,
                                          const std::function<bool(uint64_t)>& in_use) {
  std::lock_guard lock(mu_);
  SweepResult r;
  const auto now = Clock::now();
  // Each inode is looked at once per sweep: what is skipped or named goes
  // to the back (touched), so the walk ends at the first one seen again.
  size_t budget = use_.size();
  while (budget-- > 0 && !use_.empty() && r.forget.size() < limit) {
    Inode& n = use_.front();
    const bool over = inodes_.size() > max_inodes;
    if (!over && n.last_used + idle > now) break;  // the rest are warmer
    if (n.local || in_use(n.ino)) {
      TouchLocked(n, now);
      continue;
    }
    if (n.nlookup == 0) {
      RemoveLocked(&n);
      ++r.dropped;
      continue;
    }
    // The kernel holds it: ask it to forget the name (a directory's subtree
    // goes with it). Its FORGET then drops the inode here.
    if (auto it = children_.find(ChildKey(n.parent, n.name));
        it != children_.end() && it->second == n.ino)
      r.forget.emplace_back(n.parent, n.name);
    TouchLocked(n, now);
  }
  return r;
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
    RemoveLocked(it->second.get(), /*relisted_soon=*/true);
}

size_t InodeTable::size() const {
  std::lock_guard lock(mu_);
  return inodes_.size();
}

}  // namespace s3rdmafs::meta
