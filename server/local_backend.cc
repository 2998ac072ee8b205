#include "local_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "s3rdmafs/s3/sigv4.h"

namespace s3rdma::server {

using s3rdmafs::Errc;
using s3rdmafs::MakeError;

namespace {

constexpr const char* kEtagXattr = "user.s3rdma.etag";
constexpr const char* kMetaXattr = "user.s3rdma.meta";
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
    return s3rdmafs::Error(Errc::kAccessDenied, what + ": " + strerror(err));
  if (err == ENOSPC || err == EDQUOT)
    return s3rdmafs::Error(Errc::kNoSpace, what + ": " + strerror(err));
  return s3rdmafs::Error(Errc::kIo, what + ": " + strerror(err));
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
  if (fd < 0) return "cannot write in " + root_ + ": " + strerror(errno);
  std::string why;
  if (fsetxattr(fd, kMetaXattr, "", 0, 0) != 0)
    why = root_ + " has no user xattrs (" + std::string(strerror(errno)) + ")";
  close(fd);
  unlink(probe.c_str());
  return why;
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
    if (part.rfind(kTempPrefix, 0) == 0 || part == kMarkerName) return false;
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return key.find('\0') == std::string::npos;
}

std::string LocalBackend::PathOf(const std::string& bucket, const std::string& key) const {
  return root_ + "/" + bucket + (key.empty() ? "" : "/" + key);
}

Result<std::vector<std::string>> LocalBackend::ListBuckets() const {
  std::vector<std::string> out;
  DIR* d = opendir(root_.c_str());
  if (!d) return MakeError(Errc::kIo, "cannot open root " + root_ + ": " + strerror(errno));
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    struct stat st;
    if (ValidBucketName(name) && stat((root_ + "/" + name).c_str(), &st) == 0 &&
        S_ISDIR(st.st_mode))
      out.push_back(name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> LocalBackend::BucketExists(const std::string& bucket) const {
  struct stat st;
  if (!ValidBucketName(bucket) || stat(PathOf(bucket, "").c_str(), &st) != 0 ||
      !S_ISDIR(st.st_mode))
    return MakeError(Errc::kNoSuchBucket, "The specified bucket does not exist");
  return {};
}

Result<void> LocalBackend::CreateBucket(const std::string& bucket) {
  if (!ValidBucketName(bucket)) return MakeError(Errc::kInvalidArgument, "invalid bucket name");
  if (mkdir(PathOf(bucket, "").c_str(), 0755) != 0) {
    if (errno == EEXIST) return MakeError(Errc::kBadRequest, "BucketAlreadyOwnedByYou");
    return FromErrno(errno, "create bucket");
  }
  return {};
}

Result<void> LocalBackend::DeleteBucket(const std::string& bucket) {
  if (auto r = BucketExists(bucket); !r) return r;
  if (rmdir(PathOf(bucket, "").c_str()) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST)
      return MakeError(Errc::kBadRequest, "BucketNotEmpty");
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
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
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
  DIR* d = opendir(path.c_str());
  if (!d) return nullptr;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == kMarkerName || name.rfind(kTempPrefix, 0) == 0)
      continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
      struct stat es;
      if (stat((path + "/" + name).c_str(), &es) != 0) continue;
      is_dir = S_ISDIR(es.st_mode);
    }
    entries->push_back({std::move(name), is_dir});
  }
  closedir(d);
  // S3 order is byte order of the full key, and a directory's keys all
  // continue with '/', so a directory sorts as "name/".
  std::sort(entries->begin(), entries->end(), [](const DirEntry& a, const DirEntry& b) {
    std::string ka = a.is_dir ? a.name + "/" : a.name;
    std::string kb = b.is_dir ? b.name + "/" : b.name;
    return ka < kb;
  });
  std::lock_guard lock(dir_cache_mu_);
  if (dir_cache_.size() >= kDirCacheMax) dir_cache_.clear();
  dir_cache_[path] = {st.st_mtim, entries};
  return entries;
}

// Appends keys under `dir_path` (whose keys start with `key_prefix`) in order.
// Returns false once max_keys + 1 entries are collected (truncated).
bool LocalBackend::Walk(const std::string& dir_path, const std::string& key_prefix,
                        const ListQuery& q, bool recursive, ListOutcome* out) {
  auto entries = SortedDir(dir_path);
  if (!entries) return true;
  auto emit = [&](ListEntry e) {
    if (out->entries.size() == q.max_keys) {
      out->truncated = true;
      return false;
    }
    out->entries.push_back(std::move(e));
    return true;
  };
  for (const DirEntry& e : *entries) {
    std::string key = key_prefix + e.name + (e.is_dir ? "/" : "");
    // Only keys that match the prefix (the prefix may end mid-name).
    size_t common = std::min(key.size(), q.prefix.size());
    if (key.compare(0, common, q.prefix, 0, common) != 0) continue;
    std::string path = dir_path + "/" + e.name;
    if (!e.is_dir) {
      if (key.size() < q.prefix.size() || key <= q.start_after) continue;
      struct stat st;
      if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (!emit({key, false, MetaFromStat(st, path)})) return false;
      continue;
    }
    // A directory: its keys all start with `key` ("name/").
    if (!q.start_after.empty() && q.start_after > key &&
        q.start_after.compare(0, key.size(), key) != 0)
      continue;  // the whole subtree sorts before start_after
    if (key.size() >= q.prefix.size() && !recursive) {  // delimiter listing: a common prefix
      if (q.start_after.compare(0, key.size(), key) == 0) continue;  // already returned
      if (!emit({key, true, {}})) return false;
      continue;
    }
    if (key.size() >= q.prefix.size() && key > q.start_after && HasMarkerOrEmpty(path)) {
      struct stat st;
      stat(path.c_str(), &st);
      ObjectMeta m;
      m.mtime_ns = Ns(st.st_mtim);
      m.etag = "\"d41d8cd98f00b204e9800998ecf8427e\"";
      if (!emit({key, false, m})) return false;
    }
    if (!Walk(path, key, q, recursive, out)) return false;
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
  bool recursive = q.delimiter != "/";
  if (!dir_key.empty() && dir_key == q.prefix && dir_key > q.start_after &&
      HasMarkerOrEmpty(dir_path)) {
    // The marker object of the listed directory itself ("dir/" under prefix "dir/").
    struct stat st;
    stat(dir_path.c_str(), &st);
    ObjectMeta m;
    m.mtime_ns = Ns(st.st_mtim);
    m.etag = "\"d41d8cd98f00b204e9800998ecf8427e\"";
    out.entries.push_back({dir_key, false, m});
  }
  Walk(dir_path, dir_key, q, recursive, &out);
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
  // Create parent directories ("a/b/c" needs a/ and a/b/).
  for (size_t pos = PathOf(bucket, "").size() + 1; (pos = path.find('/', pos)) != std::string::npos;
       ++pos) {
    std::string dir = path.substr(0, pos);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return tl::unexpected(ErrorFromErrno(errno, "mkdir " + dir));
  }
  if (marker) {
    if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
      return tl::unexpected(ErrorFromErrno(errno, "mkdir"));
    path += std::string("/") + kMarkerName;
  }
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
                                      std::string(strerror(errno))));
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

Result<ObjectMeta> LocalBackend::Copy(const std::string& src_bucket, const std::string& src_key,
                                      const std::string& if_match, const std::string& bucket,
                                      const std::string& key, const UserMeta* replace) {
  auto src = Open(src_bucket, src_key);
  if (!src) return tl::unexpected(src.error());
  int in = src->first;
  ObjectMeta from = src->second;
  if (!if_match.empty() && if_match != "*" && if_match != from.etag) {
    close(in);
    return MakeError(Errc::kPreconditionFailed, "x-amz-copy-source-if-match did not hold");
  }
  auto r = Publish(bucket, key, replace ? *replace : from.user, [&](int fd) -> Result<std::string> {
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
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
    if (unlink(path.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR)
      return FromErrno(errno, "delete");
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
