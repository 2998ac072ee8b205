// The inode table and dentry cache: which names exist under which directory,
// what we last learnt about them, and for how long that is trusted.
//
//  - Inode numbers are never reused within a mount; inode 1 is the root.
//  - Lookup counts follow libfuse's rules: every positive entry reply (lookup,
//    readdirplus) adds one, forget() subtracts; an inode whose count drops to
//    zero is dropped (the root never is).
//  - Each (key, ETag) pair seen gets a fresh object version id; the page cache
//    keys blocks by it, so changed objects are never served from old pages.
//  - Negative entries remember names that do not exist, for negative_ttl.
//  - Bounded: every inode is on a use-ordered list. Sweep() drops the cold
//    ones the kernel holds no reference to, and names the cold ones it does
//    hold, for the caller to ask the kernel to forget (it then sends FORGET).
//    Open and unsaved inodes are never cold.
//  - A directory's children are one range of the ordered name index, so a
//    subtree is walked without a scan of the table.
//
// Thread-safety: every method takes the table's mutex internally; nothing here
// performs I/O, so the lock is never held across a network call.
#pragma once

#include <boost/intrusive/list.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "s3rdmafs/meta/posix_meta.h"
#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::meta {

using Clock = std::chrono::steady_clock;
inline constexpr uint64_t kRootIno = 1;

struct Ttls {
  std::chrono::milliseconds attr{10000};
  std::chrono::milliseconds entry{10000};
  std::chrono::milliseconds negative{5000};
};

struct ObjectVersion {
  std::string etag;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t id = 0;  // page-cache key; new for every (key, etag)
  PosixMeta posix;  // from x-amz-meta-* (files: the object; directories: the "dir/" marker)
  bool posix_known = false;  // a HEAD, our own write or the directory's record told us
  std::string link_target;   // a symlink's target, when known without a GET
};

// A copy of an inode's state, safe to use without the table's lock.
struct InodeView {
  uint64_t ino = 0;
  bool is_dir = false;
  std::string key;  // files: the object key; directories: the prefix ("" or ending in '/')
  uint64_t parent = 0;
  std::string name;
  ObjectVersion version;
  bool attr_fresh = false;
  bool local = false;  // has writes not yet in the store: never expires, never re-fetched
  uint64_t last_opened_version = 0;
  // Its name now belongs to another inode: the store showed it is not the
  // type the kernel was told (see MarkTypeGuessed). Look the name up again.
  bool replaced = false;
};

class InodeTable {
 public:
  InodeTable(std::string root_prefix, Ttls ttls);

  std::optional<InodeView> Get(uint64_t ino) const;
  // The child if its name -> inode mapping is still trusted.
  std::optional<InodeView> FreshChild(uint64_t parent, std::string_view name) const;
  bool IsNegative(uint64_t parent, std::string_view name) const;
  // A listing of `dir` just went through every name (each one now has an
  // inode here): for entry_ttl, a name with no inode does not exist. Any
  // child dropped from the table ends that; `since` (RemovalCount when the
  // listing began) tells whether one was dropped while it ran.
  uint64_t RemovalCount(uint64_t dir) const;
  void MarkListed(uint64_t dir, uint64_t since);
  bool KnownAbsent(uint64_t parent, std::string_view name) const;
  void AddNegative(uint64_t parent, std::string_view name);

  // Records what a LIST or HEAD said; returns the inode number (existing one
  // when the kind is unchanged). Lookup counts are not touched.
  uint64_t UpsertFile(uint64_t parent, std::string_view name, const s3::ObjectInfo& info);
  uint64_t UpsertDir(uint64_t parent, std::string_view name);
  // A HEAD refreshed a file's attributes. Returns the inode that now has the
  // name: `ino`, or a new one when `ino`'s type was only guessed and the
  // store says otherwise (the kernel must never see an inode change type).
  uint64_t RefreshFile(uint64_t ino, const s3::ObjectInfo& info);
  // A listing told the kernel this file is a regular one without knowing
  // its x-amz-meta-mode: should a HEAD find a symlink or a special file,
  // the name moves to a new inode and this one is `replaced`.
  void MarkTypeGuessed(uint64_t ino);
  // Forget what we know of an inode's attributes (e.g. its ETag no longer matches).
  void MarkStale(uint64_t ino);
  // Attributes we changed ourselves (chmod, a committed write, a marker's HEAD).
  void SetPosix(uint64_t ino, const PosixMeta& posix);
  // The directory record's word on a file (meta/dir_record.h): taken only
  // for the version it names (same ETag, quotes aside, and size) and only
  // where nothing better (a HEAD, our own write) is known. True if taken.
  bool ApplyRecord(uint64_t ino, const std::string& bare_etag, uint64_t size,
                   const PosixMeta& posix, const std::string& link_target);
  // A symlink's target, learnt for the version `etag` (a GET or our write).
  void SetLinkTarget(uint64_t ino, const std::string& etag, const std::string& target);
  // A write: mtime moves on (one lock, no copy of the inode; every write calls it).
  void TouchMtime(uint64_t ino, int64_t mtime_ns);
  // Pins an inode with uncommitted writes (and its name) against expiry.
  void SetLocal(uint64_t ino, bool local);

  // Namespace changes made by this mount. Unlink drops the name (the inode
  // lives on until forgotten) and remembers it as missing. Rename moves the
  // name, replacing whatever the target name held; a directory's descendants
  // get their new keys.
  void Unlink(uint64_t parent, std::string_view name);
  void Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
              std::string_view new_name);
  // Every inode below directory `dir`, at any depth (directory rename, rmdir
  // checks): a walk of its subtree, not of the table.
  std::vector<InodeView> Under(uint64_t dir) const;
  // The directory's direct children.
  std::vector<InodeView> Children(uint64_t dir) const;
  // How many inodes are local now: when none, callers skip the scans above.
  size_t local_count() const;
  void SetLastOpened(uint64_t ino, uint64_t version_id);

  void IncLookup(uint64_t ino, uint64_t n = 1);
  void Forget(uint64_t ino, uint64_t n);
  // Drops an inode that never got a lookup reference (readdirplus overflow).
  void DropIfUnreferenced(uint64_t ino);

  // Releases cold inodes: untouched for `idle`, or the least recently used
  // past `max_inodes`. Those the kernel holds no reference to are dropped;
  // the names of those it holds are returned (at most `limit`) so the caller
  // can ask the kernel to forget them, and they count as touched now (asked
  // again only after another `idle`). Open (`in_use`) and unsaved inodes
  // are skipped. Returns the names and how many inodes were dropped.
  struct SweepResult {
    std::vector<std::pair<uint64_t, std::string>> forget;  // (parent, name)
    size_t dropped = 0;
  };
  SweepResult Sweep(std::chrono::milliseconds idle, size_t max_inodes, size_t limit,
                    const std::function<bool(uint64_t ino)>& in_use);

  size_t size() const;
  Ttls ttls() const;
  // SIGHUP reload: new TTLs apply to what is cached from now on.
  void SetTtls(const Ttls& ttls);

 private:
  struct Inode {
    uint64_t ino;
    uint64_t parent;
    std::string name;
    std::string key;
    bool is_dir;
    ObjectVersion version;
    Clock::time_point attr_expiry;
    Clock::time_point entry_expiry;
    uint64_t nlookup = 0;
    uint64_t last_opened_version = 0;
    bool local = false;
    bool type_guessed = false;       // told the kernel "regular file" without the object's mode
    Clock::time_point listed_until;  // directories: every child is in the table until then
    uint64_t removals = 0;           // directories: children dropped from the table
    bool replaced = false;
    // Use order (front = coldest); touched by lookups, listings, attribute
    // reads. Mutable: const readers touch it too (under mu_).
    mutable boost::intrusive::list_member_hook<> use_hook;
    mutable Clock::time_point last_used;
  };
  using UseList = boost::intrusive::list<
      Inode,
      boost::intrusive::member_hook<Inode, boost::intrusive::list_member_hook<>, &Inode::use_hook>>;
  void TouchLocked(const Inode& n, Clock::time_point now) const;
  void CollectUnderLocked(uint64_t dir, std::vector<const Inode*>* out) const;
  static std::string ChildKey(uint64_t parent, std::string_view name);
  InodeView ViewLocked(const Inode& inode, Clock::time_point now) const;
  uint64_t UpsertLocked(uint64_t parent, std::string_view name, bool is_dir,
                        const s3::ObjectInfo* info);
  void RemoveLocked(Inode* inode, bool relisted_soon = false);
  void ApplyInfoLocked(Inode* inode, const s3::ObjectInfo& info);

  Ttls ttls_;  // guarded by mu_
  mutable std::mutex mu_;
  uint64_t next_ino_ = kRootIno + 1;                             // guarded by mu_
  uint64_t next_version_ = 1;                                    // guarded by mu_
  size_t local_count_ = 0;                                       // guarded by mu_
  std::unordered_map<uint64_t, std::unique_ptr<Inode>> inodes_;  // guarded by mu_
  // (parent, name) -> inode, ordered: a directory's children are one range.
  std::map<std::string, uint64_t> children_;                     // guarded by mu_
  mutable UseList use_;                                          // guarded by mu_
  std::unordered_map<std::string, Clock::time_point> negative_;  // guarded by mu_
};

}  // namespace s3rdmafs::meta
