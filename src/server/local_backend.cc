#include "local_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/s3/sigv4.h"

namespace s3rdma::server {

using s3rdmafs::Errc;
using s3rdmafs::MakeError;

namespace {

constexpr const char* kEtagXattr = "user.s3rdma.etag";
constexpr const char* kMetaXattr = "user.s3rdma.meta";
constexpr const char* kPartsXattr = "user.s3rdma.parts";        // LocalBackend::SetParts
constexpr const char* kCreatedXattr = "user.s3rdma.created";    // on a bucket: ns since 1970
constexpr const char* kLocationXattr = "user.s3rdma.location";  // its LocationConstraint
constexpr const char* kAclXattr = "user.s3rdma.acl";            // on a bucket: its canned ACL
constexpr size_t kDirCacheMax = 64;

int64_t Ns(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

std::string StampOf(const struct stat& st) {
  return std::to_string(Ns(st.st_mtim)) + ":" + std::to_string(st.st_size) + ":";
}

class Digest {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_, md, nullptr);
  }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  void Update(const char* d, size_t n) { EVP_DigestUpdate(ctx_, d, n); }
  std::string Hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out, &len);
    return s3rdmafs::s3::HexEncode(std::string_view(reinterpret_cast<char*>(out), len));
  }

 private:
  EVP_MD_CTX* ctx_;
};

Result<void> FromErrno(int err, const std::string& what) {
  return tl::unexpected(ErrorFromErrno(err, what));
}

std::string EncodeUserMeta(const UserMeta& user) {
  std::string blob;
  for (auto& [k, v] : user) blob += k + "\n" + v + "\n";
  return blob;
}

UserMeta ReadUserMeta(int fd) {
  char buf[8192];
  ssize_t n = fgetxattr(fd, kMetaXattr, buf, sizeof buf);
  UserMeta user;
  std::string_view rest(buf, n > 0 ? n : 0);
  while (!rest.empty()) {
    size_t a = rest.find('\n');
    if (a == std::string_view::npos) break;
    size_t b = rest.find('\n', a + 1);
    if (b == std::string_view::npos) break;
    user.emplace_back(std::string(rest.substr(0, a)), std::string(rest.substr(a + 1, b - a - 1)));
    rest.remove_prefix(b + 1);
  }
  return user;
}

}  // namespace

s3rdmafs::Error ErrorFromErrno(int err, const std::string& what) {
  if (err == ENOENT || err == ENOTDIR) return s3rdmafs::Error(Errc::kNoSuchKey, what);
  if (err == EACCES || err == EPERM)
    return s3rdmafs::Error(Errc::kAccessDenied, what + ": " + s3rdmafs::ErrnoText(err));
  if (err == ENOSPC || err == EDQUOT)
    return s3rdmafs::Error(Errc::kNoSpace, what + ": " + s3rdmafs::ErrnoText(err));
  return s3rdmafs::Error(Errc::kIo, what + ": " + s3rdmafs::ErrnoText(err));
}

ObjectMeta MetaFromStat(const struct stat& st, const std::string& path) {
  ObjectMeta m;
  m.size = S_ISDIR(st.st_mode) ? 0 : static_cast<uint64_t>(st.st_size);
  m.mtime_ns = Ns(st.st_mtim);
  // The MD5 ETag we computed on upload is kept in an xattr together with the
  // mtime and size it belongs to; files placed by other means get a stable
  // synthetic ETag from (inode, size, mtime) instead of a full read.
  char buf[128];
  ssize_t n = S_ISDIR(st.st_mode) ? -1 : getxattr(path.c_str(), kEtagXattr, buf, sizeof buf - 1);
  std::string stamp = StampOf(st);
  if (n > 0) {
    std::string v(buf, n);
    if (v.compare(0, stamp.size(), stamp) == 0) {
      m.etag = "\"" + v.substr(stamp.size()) + "\"";
      return m;
    }
  }
  if (S_ISDIR(st.st_mode)) {
    m.etag = "\"d41d8cd98f00b204e9800998ecf8427e\"";  // MD5 of the empty marker
    return m;
  }
  // The "-1" suffix is the multipart ETag form: clients know it is not an
  // MD5 of the body and do not verify it as one (rclone, s3cmd, awscli do).
  m.etag = "\"" + s3rdmafs::s3::Sha256Hex(std::to_string(st.st_ino) + ":" + stamp).substr(0, 32) +
           "-1\"";
  return m;
}

std::string LocalBackend::ProbeMetadataSupport() const {
  std::string probe = root_ + "/" + kTempPrefix + "xattr-probe-" + std::to_string(getpid());
  int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot write in " + root_ + ": " + s3rdmafs::ErrnoText(errno);
  std::string why;
  if (fsetxattr(fd, kMetaXattr, "", 0, 0) != 0)
    why = root_ + " has no user xattrs (" + std::string(s3rdmafs::ErrnoText(errno)) + ")";
  close(fd);
  unlink(probe.c_str());
  return why;
}

// "size[*count][:checksum]," per part or run of parts.
void LocalBackend::SetParts(int fd, const std::vector<PartRecord>& parts) {
  std::string full;
  for (const auto& p : parts) {
    full += std::to_string(p.size);
    if (!p.checksum.empty()) full += ":" + p.checksum;
    full += ",";
  }
  if (fsetxattr(fd, kPartsXattr, full.data(), full.size(), 0) == 0) return;
  std::string compact;  // without the checksums, equal sizes as runs
  for (size_t i = 0; i < parts.size();) {
    size_t n = 1;
    while (i + n < parts.size() && parts[i + n].size == parts[i].size) ++n;
    compact += std::to_string(parts[i].size) + (n > 1 ? "*" + std::to_string(n) : "") + ",";
    i += n;
  }
  fsetxattr(fd, kPartsXattr, compact.data(), compact.size(), 0);
}

std::vector<LocalBackend::PartRecord> LocalBackend::Parts(int fd, uint64_t size) {
  std::string buf(65536, '\0');
  ssize_t n = fgetxattr(fd, kPartsXattr, buf.data(), buf.size());
  buf.resize(n > 0 ? n : 0);
  std::vector<PartRecord> parts;
  uint64_t sum = 0;
  for (size_t start = 0, end; (end = buf.find(',', start)) != std::string::npos; start = end + 1) {
    std::string entry = buf.substr(start, end - start);
    PartRecord p;
    if (size_t colon = entry.find(':'); colon != std::string::npos) {
      p.checksum = entry.substr(colon + 1);
      entry.resize(colon);
    }
    uint64_t count = 1;
    if (size_t star = entry.find('*'); star != std::string::npos) {
      count = strtoull(entry.c_str() + star + 1, nullptr, 10);
      entry.resize(star);
    }
    p.size = strtoull(entry.c_str(), nullptr, 10);
    if (count > 10000 || parts.size() + count > 10000) return {};
    for (uint64_t i = 0; i < count; ++i) parts.push_back(p);
    sum += p.size * count;
  }
  if (sum != size) parts.clear();
  return parts;
}

bool LocalBackend::ValidBucketName(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  return b[0] != '.' && b[0] != '-';
}

bool LocalBackend::ValidKey(const std::string& key) {
  if (key.empty() || key.size() > 1024 || key[0] == '/') return false;
  size_t pos = 0;
  while (pos < key.size()) {
    size_t slash = key.find('/', pos);
    std::string_view part(key.data() + pos,
                          (slash == std::string::npos ? key.size() : slash) - pos);
    if (part.empty() && slash != std::string::npos) return false;  // "a//b" cannot be a path here
    if (part == "." || part == ".." || part.size() > 255) return false;
    if (part.rfind(kTempPrefix, 0) == 0 || part == kMarkerName || part == kObjectName) return false;
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return key.find('\0') == std::string::npos;
}

std::string LocalBackend::PathOf(const std::string& bucket, const std::string& key) const {
  return root_ + "/" + bucket + (key.empty() ? "" : "/" + key);
}

Result<std::vector<LocalBackend::BucketInfo>> LocalBackend::ListBuckets() const {
  std::vector<std::string> names;
  DIR* d = opendir(root_.c_str());
  if (!d)
    return MakeError(Errc::kIo, "cannot open root " + root_ + ": " + s3rdmafs::ErrnoText(errno));
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
  while (dirent* e = readdir(d)) names.push_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<BucketInfo> out;
  for (const auto& name : names)
    if (auto b = GetBucket(name); b) out.push_back(std::move(*b));
  return out;
}

Result<LocalBackend::BucketInfo> LocalBackend::GetBucket(const std::string& bucket) const {
  if (auto r = BucketExists(bucket); !r) return tl::unexpected(r.error());
  BucketInfo b;
  b.name = bucket;
  const std::string path = PathOf(bucket, "");
  char buf[256];
  if (ssize_t n = getxattr(path.c_str(), kCreatedXattr, buf, sizeof buf - 1); n > 0)
    b.created_ns = strtoll(std::string(buf, n).c_str(), nullptr, 10);
  if (b.created_ns == 0) {  // made by hand: the directory's birth (or change) time
    struct statx sx;
    if (statx(AT_FDCWD, path.c_str(), 0, STATX_BTIME | STATX_CTIME, &sx) == 0) {
      const auto& t = (sx.stx_mask & STATX_BTIME) ? sx.stx_btime : sx.stx_ctime;
      b.created_ns = static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
    }
  }
  if (ssize_t n = getxattr(path.c_str(), kLocationXattr, buf, sizeof buf - 1); n > 0)
    b.location.assign(buf, n);
  if (ssize_t n = getxattr(path.c_str(), kAclXattr, buf, sizeof buf - 1); n > 0)
    b.acl.assign(buf, n);
  return b;
}

Result<void> LocalBackend::BucketExists(const std::string& bucket) const {
  struct stat st;
  if (!ValidBucketName(bucket) || stat(PathOf(bucket, "").c_str(), &st) != 0 ||
      !S_ISDIR(st.st_mode))
    return MakeError(Errc::kNoSuchBucket, "The specified bucket does not exist");
  return {};
}

Result<void> LocalBackend::CreateBucket(const std::string& bucket, const std::string& location,
                                        const std::string& acl) {
  if (!ValidBucketName(bucket))
    return s3rdmafs::MakeS3Error(400, "InvalidBucketName",
                                 "The specified bucket is not valid: 3 to 63 letters, digits, "
                                 "'-', '.' and '_', starting with a letter or digit");
  if (mkdir(PathOf(bucket, "").c_str(), 0755) != 0) {
    if (errno == EEXIST)
      return s3rdmafs::MakeS3Error(
          409, "BucketAlreadyOwnedByYou",
          "Your previous request to create the named bucket succeeded and you already own it.");
    return FromErrno(errno, "create bucket");
  }
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const std::string path = PathOf(bucket, ""),
                    created = std::to_string(Ns(now));  // best effort: see GetBucket
  setxattr(path.c_str(), kCreatedXattr, created.data(), created.size(), 0);
  if (!location.empty())
    setxattr(path.c_str(), kLocationXattr, location.data(), location.size(), 0);
  if (!acl.empty()) return SetBucketAcl(bucket, acl);
  return {};
}

Result<void> LocalBackend::SetBucketAcl(const std::string& bucket, const std::string& acl) {
  if (auto r = BucketExists(bucket); !r) return r;
  const std::string path = PathOf(bucket, "");
  int rc = acl == "private" || acl.empty()
               ? removexattr(path.c_str(), kAclXattr)
               : setxattr(path.c_str(), kAclXattr, acl.data(), acl.size(), 0);
  if (rc != 0 && errno != ENODATA) return FromErrno(errno, "set the ACL of bucket " + bucket);
  return {};
}

Result<void> LocalBackend::SetObjectAcl(const std::string& bucket, const std::string& key,
                                        const std::string& acl) {
  if (auto r = BucketExists(bucket); !r) return r;
  if (!ValidKey(key)) return MakeError(Errc::kNoSuchKey, "no such key");
  std::shared_lock layout(layout_mu_);
  std::string path = PathOf(bucket, key);
  if (key.back() == '/') path += kMarkerName;
  int fd = open(ObjectPathOf(path).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FromErrno(errno, "open " + key);
  UserMeta user = ReadUserMeta(fd);
  std::erase_if(user, [](const auto& kv) { return kv.first == "x-amz-acl"; });
  if (acl != "private" && !acl.empty()) user.emplace_back("x-amz-acl", acl);
  std::string blob = EncodeUserMeta(user);
  int rc = blob.empty() ? fremovexattr(fd, kMetaXattr)
                        : fsetxattr(fd, kMetaXattr, blob.data(), blob.size(), 0);
  int err = errno;
  close(fd);
  if (rc != 0 && err != ENODATA) return FromErrno(err, "set the ACL of " + key);
  return {};
}

Result<void> LocalBackend::DeleteBucket(const std::string& bucket) {
  if (auto r = BucketExists(bucket); !r) return r;
  if (rmdir(PathOf(bucket, "").c_str()) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST)
      return s3rdmafs::MakeS3Error(409, "BucketNotEmpty",
                                   "The bucket you tried to delete is not empty");
    return FromErrno(errno, "delete bucket");
  }
  return {};
}

Result<std::pair<int, ObjectMeta>> LocalBackend::Open(const std::string& bucket,
                                                      const std::string& key) const {
  if (auto r = BucketExists(bucket); !r) return tl::unexpected(r.error());
  if (!ValidKey(key)) return MakeError(Errc::kNoSuchKey, "The specified key does not exist.");
  std::string path = PathOf(bucket, key);
  bool marker = key.back() == '/';
  if (marker) {
    path.pop_back();
    if (!HasMarkerOrEmpty(path))
      return MakeError(Errc::kNoSuchKey, "The specified key does not exist.");
    path += std::string("/") + kMarkerName;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fd = open("/dev/null", O_RDONLY | O_CLOEXEC);  // an empty directory
    struct stat st;
    fstat(fd, &st);
    ObjectMeta m;
    m.mtime_ns = Ns(st.st_mtim);
    m.etag = "\"d41d8cd98f00b204e9800998ecf8427e\"";
    m.user = ReadUserMeta(fd);
    return std::make_pair(fd, m);
  }
  // One open for a plain object; a directory there holds the object of the
  // same name as its kObjectName ("a/b" beside "a/b/c").
  auto try_open = [&]() -> int {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) return fd;
    int object = openat(fd, kObjectName, O_RDONLY | O_CLOEXEC);
    int err = errno;
    close(fd);
    errno = err;
    if (object >= 0) path += std::string("/") + kObjectName;
    return object;
  };
  int fd = try_open();
  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
    std::shared_lock settled(layout_mu_);  // it may be moving into a directory just now
    fd = try_open();
  }
  if (fd < 0) {
    auto e = FromErrno(errno, "The specified key does not exist.");
    return tl::unexpected(e.error());
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return MakeError(Errc::kNoSuchKey, "The specified key does not exist.");
  }
  ObjectMeta m = MetaFromStat(st, path);
  m.user = ReadUserMeta(fd);
  return std::make_pair(fd, m);
}

Result<ObjectMeta> LocalBackend::Stat(const std::string& bucket, const std::string& key) const {
  auto r = Open(bucket, key);
  if (!r) return tl::unexpected(r.error());
  close(r->first);
  return r->second;
}

bool LocalBackend::HasMarkerOrEmpty(const std::string& dir_path) const {
  struct stat st;
  if (stat(dir_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if (access((dir_path + "/" + kMarkerName).c_str(), F_OK) == 0) return true;
  DIR* d = opendir(dir_path.c_str());
  if (!d) return false;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
  bool empty = true;
  while (dirent* e = readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == ".." || n.rfind(kTempPrefix, 0) == 0) continue;
    empty = false;
    break;
  }
  closedir(d);
  return empty;
}

std::string LocalBackend::ObjectPathOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return path + "/" + kObjectName;
  return path;
}

std::shared_ptr<const std::vector<LocalBackend::DirEntry>> LocalBackend::SortedDir(
    const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return nullptr;
  {
    std::lock_guard lock(dir_cache_mu_);
    auto it = dir_cache_.find(path);
    if (it != dir_cache_.end() && it->second.mtime.tv_sec == st.st_mtim.tv_sec &&
        it->second.mtime.tv_nsec == st.st_mtim.tv_nsec)
      return it->second.entries;
  }
  auto entries = std::make_shared<std::vector<DirEntry>>();
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
  DIR* d = opendir(path.c_str());
  if (!d) return nullptr;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == kMarkerName || name == kObjectName ||
        name.rfind(kTempPrefix, 0) == 0)
      continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
      struct stat es;
      if (stat((path + "/" + name).c_str(), &es) != 0) continue;
      is_dir = S_ISDIR(es.st_mode);
    }
    if (is_dir && access((path + "/" + name + "/" + kObjectName).c_str(), F_OK) == 0)
      entries->push_back({DirEntry::kDirObject, name, name});
    std::string sort_key = is_dir ? name + "/" : name;
    entries->push_back(
        {is_dir ? DirEntry::kDir : DirEntry::kFile, std::move(name), std::move(sort_key)});
  }
  closedir(d);
  std::sort(entries->begin(), entries->end(),
            [](const DirEntry& a, const DirEntry& b) { return a.sort_key < b.sort_key; });
  std::lock_guard lock(dir_cache_mu_);
  if (dir_cache_.size() >= kDirCacheMax) dir_cache_.clear();
  dir_cache_[path] = {st.st_mtim, entries};
  return entries;
}

// One listing in progress: what it asked for and what it has collected.
// Delimiter "/" follows the directories (a subdirectory is one common
// prefix); any other delimiter walks the whole tree in key order and rolls
// up keys that hold it after the prefix.
struct LocalBackend::Lister {
  const ListQuery& q;
  ListOutcome* out;
  bool recursive = q.delimiter != "/";
  bool rollup = recursive && !q.delimiter.empty();
  std::string last_prefix;  // the common prefix emitted last (rollup)

  // False once max_keys entries are collected and another was due (truncated).
  bool Push(ListEntry e) {
    if (out->entries.size() == q.max_keys) {
      out->truncated = true;
      return false;
    }
    out->entries.push_back(std::move(e));
    return true;
  }
  bool Object(const std::string& key, const ObjectMeta& meta) {
    if (rollup) {
      size_t at = key.find(q.delimiter, q.prefix.size());
      if (at != std::string::npos) {
        std::string cp = key.substr(0, at + q.delimiter.size());
        if (cp == last_prefix || q.start_after.compare(0, cp.size(), cp) == 0) return true;
        last_prefix = cp;
        return Push({std::move(cp), true, {}});
      }
    }
    return Push({key, false, meta});
  }
};

namespace {
ObjectMeta MarkerMeta(const std::string& dir_path) {
  struct stat st;
  ObjectMeta m;
  if (stat(dir_path.c_str(), &st) == 0) m.mtime_ns = Ns(st.st_mtim);
  m.etag = "\"d41d8cd98f00b204e9800998ecf8427e\"";  // MD5 of the empty marker
  return m;
}
}  // namespace

// Appends keys under `dir_path` (whose keys start with `key_prefix`) in order.
// Returns false once the page is full (truncated). Each directory is entered
// at the first entry that can follow start_after and match the prefix (a
// binary search), so paging through a huge directory costs the same per page.
bool LocalBackend::Walk(const std::string& dir_path, const std::string& key_prefix,
                        Lister& lister) {
  const ListQuery& q = lister.q;
  auto entries = SortedDir(dir_path);
  if (!entries) return true;
  auto first_from = [&](const std::string& bound) {
    // Only the first path component of `bound` below this directory counts.
    std::string comp = bound.substr(key_prefix.size());
    if (size_t slash = comp.find('/'); slash != std::string::npos) comp.resize(slash + 1);
    return std::lower_bound(entries->begin(), entries->end(), comp,
                            [](const DirEntry& e, const std::string& c) { return e.sort_key < c; });
  };
  auto it = entries->begin();
  std::string name_prefix;  // what this directory's names must start with
  if (q.prefix.size() > key_prefix.size()) {
    name_prefix = q.prefix.substr(key_prefix.size());
    it = std::max(it, first_from(q.prefix));
  }
  if (q.start_after.size() > key_prefix.size() &&
      q.start_after.compare(0, key_prefix.size(), key_prefix) == 0)
    it = std::max(it, first_from(q.start_after));
  for (; it != entries->end(); ++it) {
    const DirEntry& e = *it;
    if (e.sort_key.compare(0, name_prefix.size(), name_prefix, 0,
                           std::min(name_prefix.size(), e.sort_key.size())) != 0) {
      if (e.sort_key > name_prefix) break;  // sorted: nothing further matches
      continue;
    }
    std::string key = key_prefix + e.sort_key;
    std::string path = dir_path + "/" + e.name;
    if (e.kind != DirEntry::kDir) {
      if (key.size() < q.prefix.size() || key <= q.start_after) continue;
      if (e.kind == DirEntry::kDirObject) path += std::string("/") + kObjectName;
      struct stat st;
      if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (!lister.Object(key, MetaFromStat(st, path))) return false;
      continue;
    }
    // A directory: its keys all start with `key` ("name/").
    if (!q.start_after.empty() && q.start_after > key &&
        q.start_after.compare(0, key.size(), key) != 0)
      continue;  // the whole subtree sorts before start_after
    if (key.size() >= q.prefix.size() && !lister.recursive) {        // "/" listing: a common prefix
      if (q.start_after.compare(0, key.size(), key) == 0) continue;  // already returned
      if (!lister.Push({key, true, {}})) return false;
      continue;
    }
    if (key.size() >= q.prefix.size() && key > q.start_after && HasMarkerOrEmpty(path))
      if (!lister.Object(key, MarkerMeta(path))) return false;
    if (!Walk(path, key, lister)) return false;
  }
  return true;
}

Result<ListOutcome> LocalBackend::List(const std::string& bucket, const ListQuery& q) {
  if (auto r = BucketExists(bucket); !r) return tl::unexpected(r.error());
  ListOutcome out;
  if (q.max_keys == 0) return out;
  // Start at the deepest directory the prefix names completely.
  size_t slash = q.prefix.rfind('/');
  std::string dir_key = slash == std::string::npos ? "" : q.prefix.substr(0, slash + 1);
  if (!dir_key.empty() && !ValidKey(dir_key)) return out;
  std::string dir_path =
      PathOf(bucket, "") + (dir_key.empty() ? "" : "/" + dir_key.substr(0, dir_key.size() - 1));
  Lister lister{q, &out};
  if (!dir_key.empty() && dir_key == q.prefix && dir_key > q.start_after &&
      HasMarkerOrEmpty(dir_path)) {
    // The marker object of the listed directory itself ("dir/" under prefix "dir/").
    if (!lister.Object(dir_key, MarkerMeta(dir_path))) return out;
  }
  Walk(dir_path, dir_key, lister);
  return out;
}

Result<std::pair<std::string, std::string>> WriteDigested(
    int fd, const std::function<bool(const LocalBackend::Writer&)>& fill, bool want_sha256) {
  Digest md5(EVP_md5()), sha(EVP_sha256());
  int write_errno = 0;
  bool ok = fill([&](const char* data, size_t n) {
    md5.Update(data, n);
    if (want_sha256) sha.Update(data, n);
    while (n > 0) {
      ssize_t w = write(fd, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        write_errno = errno;
        return false;
      }
      data += w;
      n -= w;
    }
    return true;
  });
  if (write_errno) return tl::unexpected(ErrorFromErrno(write_errno, "write"));
  if (!ok) return MakeError(Errc::kConnection, "upload aborted by the client");
  return std::make_pair(md5.Hex(), want_sha256 ? sha.Hex() : std::string());
}

Result<void> CopyRange(int src, uint64_t offset, uint64_t length, int dst) {
  loff_t in = static_cast<loff_t>(offset);
  std::vector<char> buf;  // only for filesystems without copy_file_range between these files
  while (length > 0) {
    ssize_t n = copy_file_range(src, &in, dst, nullptr, std::min<uint64_t>(length, 1u << 30), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
      buf.resize(1 << 20);  // copy by hand
      ssize_t r = pread(src, buf.data(), std::min<uint64_t>(length, buf.size()), in);
      if (r <= 0) return tl::unexpected(ErrorFromErrno(r < 0 ? errno : EIO, "copy: read"));
      for (ssize_t done = 0; done < r;) {
        ssize_t w = write(dst, buf.data() + done, r - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return tl::unexpected(ErrorFromErrno(errno, "copy: write"));
        done += w;
      }
      in += r;
      length -= r;
      continue;
    }
    if (n < 0) return tl::unexpected(ErrorFromErrno(errno, "copy"));
    if (n == 0) return MakeError(Errc::kIo, "copy: the source is shorter than its size");
    length -= n;
  }
  return {};
}

Result<ObjectMeta> LocalBackend::Put(const std::string& bucket, const std::string& key,
                                     const UserMeta& user,
                                     const std::function<bool(const Writer&)>& fill,
                                     const Verifier& verify, bool want_sha256,
                                     const WriteCondition& condition) {
  return Publish(
      bucket, key, user,
      [&](int fd) -> Result<std::string> {
        auto digests = WriteDigested(fd, fill, want_sha256);
        if (!digests) return tl::unexpected(digests.error());
        if (auto v = verify(digests->first, digests->second); !v) return tl::unexpected(v.error());
        return digests->first;
      },
      condition);
}

Result<ObjectMeta> LocalBackend::Publish(const std::string& bucket, const std::string& key,
                                         const UserMeta& user, const FileWriter& write_body,
                                         const WriteCondition& condition) {
  if (auto r = BucketExists(bucket); !r) return tl::unexpected(r.error());
  if (!ValidKey(key))
    return MakeError(Errc::kInvalidArgument, "key '" + key + "' cannot be stored by this server");
  std::string path = PathOf(bucket, key);
  bool marker = key.back() == '/';
  if (marker) path.pop_back();
  if (auto r = MakeParents(PathOf(bucket, ""), marker ? path + "/" : path); !r)
    return tl::unexpected(r.error());
  if (marker) path += std::string("/") + kMarkerName;
  static std::atomic<uint64_t> seq{0};
  std::string dir = path.substr(0, path.rfind('/'));
  std::string tmp =
      dir + "/" + kTempPrefix + std::to_string(getpid()) + "-" + std::to_string(seq++);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return tl::unexpected(ErrorFromErrno(errno, "create " + tmp));
  auto fail = [&](const s3rdmafs::Error& why) -> Result<ObjectMeta> {
    close(fd);
    unlink(tmp.c_str());
    return tl::unexpected(why);
  };
  auto etag = write_body(fd);
  if (!etag) return fail(etag.error());
  if (!user.empty()) {
    std::string blob = EncodeUserMeta(user);
    if (fsetxattr(fd, kMetaXattr, blob.data(), blob.size(), 0) != 0)
      return fail(s3rdmafs::Error(Errc::kNotSupported,
                                  "this server's directory cannot keep object metadata "
                                  "(user xattrs): " +
                                      std::string(s3rdmafs::ErrnoText(errno))));
  }
  struct stat st;
  fstat(fd, &st);
  std::string stamp = StampOf(st) + *etag;
  fsetxattr(fd, kEtagXattr, stamp.data(), stamp.size(), 0);  // best effort: see MetaFromStat
  close(fd);
  static std::mutex publish_mu;  // the condition's check and the rename, as one step
  std::lock_guard publishing(publish_mu);
  if (condition.any()) {
    auto now = Stat(bucket, key);
    auto bare = [](std::string e) {
      if (e.size() >= 2 && e.front() == '"') e = e.substr(1, e.size() - 2);
      return e;
    };
    bool ok = condition.if_none_match ? !now : now && bare(now->etag) == bare(condition.if_match);
    if (!ok) {
      unlink(tmp.c_str());
      return MakeError(Errc::kPreconditionFailed,
                       "At least one of the pre-conditions you specified did not hold");
    }
  }
  std::shared_lock layout(layout_mu_);
  if (!marker) path = ObjectPathOf(path);  // "a/b" beside "a/b/c" lives in a/b/
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return tl::unexpected(ErrorFromErrno(err, "publish " + key));
  }
  ObjectMeta m;
  m.size = marker ? 0 : static_cast<uint64_t>(st.st_size);
  m.mtime_ns = Ns(st.st_mtim);
  m.etag = "\"" + *etag + "\"";
  m.user = user;
  return m;
}

// Parents of `path` ("a/b/c" needs a/ and a/b/) become directories; one that
// is an object file now ("a/b" before "a/b/c" arrives) moves inside as the
// directory's kObjectName.
Result<void> LocalBackend::MakeParents(const std::string& bucket_path, const std::string& path) {
  for (size_t pos = bucket_path.size() + 1; (pos = path.find('/', pos)) != std::string::npos;
       ++pos) {
    std::string dir = path.substr(0, pos);
    if (mkdir(dir.c_str(), 0755) == 0) continue;
    if (errno != EEXIST) return tl::unexpected(ErrorFromErrno(errno, "mkdir " + dir));
    struct stat st;
    if (stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
      if (auto r = ObjectToDirectory(dir); !r) return r;
  }
  return {};
}

Result<void> LocalBackend::ObjectToDirectory(const std::string& path) {
  std::unique_lock layout(layout_mu_);
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return {};  // done meanwhile
  static std::atomic<uint64_t> seq{0};
  std::string aside = path.substr(0, path.rfind('/')) + "/" + kTempPrefix + "obj-" +
                      std::to_string(getpid()) + "-" + std::to_string(seq++);
  if (rename(path.c_str(), aside.c_str()) != 0)
    return tl::unexpected(ErrorFromErrno(errno, "move " + path + " aside"));
  if (mkdir(path.c_str(), 0755) != 0 ||
      rename(aside.c_str(), (path + "/" + kObjectName).c_str()) != 0) {
    int err = errno;
    rmdir(path.c_str());
    rename(aside.c_str(), path.c_str());  // as it was
    return tl::unexpected(ErrorFromErrno(err, "make " + path + " a directory"));
  }
  return {};
}

Result<ObjectMeta> LocalBackend::Copy(
    const std::string& src_bucket, const std::string& src_key,
    const std::function<Result<UserMeta>(const ObjectMeta&)>& admit, const std::string& bucket,
    const std::string& key) {
  auto src = Open(src_bucket, src_key);
  if (!src) return tl::unexpected(src.error());
  int in = src->first;
  ObjectMeta from = src->second;
  auto user = admit(from);
  if (!user) {
    close(in);
    return tl::unexpected(user.error());
  }
  auto r = Publish(bucket, key, *user, [&](int fd) -> Result<std::string> {
    if (auto c = CopyRange(in, 0, from.size, fd); !c) return tl::unexpected(c.error());
    // Same bytes, same ETag (a multipart source keeps its "-N" form).
    return from.etag.substr(1, from.etag.size() - 2);
  });
  close(in);
  return r;
}

Result<void> LocalBackend::Delete(const std::string& bucket, const std::string& key) {
  if (auto r = BucketExists(bucket); !r) return r;
  if (!ValidKey(key)) return {};  // S3 deletes of absent keys succeed
  std::string path = PathOf(bucket, key);
  if (key.back() == '/') {
    path.pop_back();
    unlink((path + "/" + kMarkerName).c_str());
    rmdir(path.c_str());  // only if empty
  } else {
    std::shared_lock layout(layout_mu_);
    std::string at = ObjectPathOf(path);
    if (unlink(at.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR)
      return FromErrno(errno, "delete");
    if (at != path) rmdir(path.c_str());  // nothing else under it: the prefix goes too
  }
  // Prefixes exist only while something is under them: drop emptied parents
  // unless they carry a marker.
  std::string bucket_path = PathOf(bucket, "");
  for (size_t pos = path.rfind('/'); pos != std::string::npos && pos > bucket_path.size();
       pos = path.rfind('/')) {
    path.resize(pos);
    if (access((path + "/" + kMarkerName).c_str(), F_OK) == 0 || rmdir(path.c_str()) != 0) break;
  }
  return {};
}

}  // namespace s3rdma::server
