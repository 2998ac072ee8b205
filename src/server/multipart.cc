#include "multipart.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

#include "checksums.h"
#include "s3rdmafs/s3/sigv4.h"

namespace s3rdma::server {

using s3rdmafs::Errc;
using s3rdmafs::MakeError;
namespace s3 = s3rdmafs::s3;

namespace {

std::string PartPath(const std::string& dir, uint32_t n) {
  return dir + "/part-" + std::to_string(n);
}

bool ReadWhole(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

// Writes `data` to `path` atomically (tmp + rename).
Result<void> WriteSmallFile(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp" + std::to_string(gettid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return tl::unexpected(ErrorFromErrno(errno, "create " + tmp));
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    unlink(tmp.c_str());
    return tl::unexpected(ErrorFromErrno(err, "write " + path));
  }
  return {};
}

std::string Unquote(const std::string& etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    return etag.substr(1, etag.size() - 2);
  return etag;
}

}  // namespace

MultipartUploads::MultipartUploads(LocalBackend* backend, const std::string& root)
    : backend_(backend), dir_(root.empty() ? "" : root + "/.s3rdma-multipart") {
  if (dir_.empty()) return;  // a gateway: its upstream keeps the uploads
  mkdir(dir_.c_str(), 0700);
  DropOldRecords();
}

void MultipartUploads::DropOldRecords() const {
  DIR* d = opendir(dir_.c_str());
  if (!d) return;
  const time_t now = time(nullptr);
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    struct stat st;
    if (n.size() > 10 && n.compare(n.size() - 10, 10, ".completed") == 0 &&
        stat((dir_ + "/" + n).c_str(), &st) == 0 && now - st.st_mtime > kCompletedRecordSeconds)
      unlink((dir_ + "/" + n).c_str());
  }
  closedir(d);
}

Result<std::vector<MultipartUploads::UploadInfo>> MultipartUploads::List(
    const std::string& bucket, const std::string& prefix) const {
  if (auto r = backend_->BucketExists(bucket); !r) return tl::unexpected(r.error());
  DropOldRecords();
  std::vector<UploadInfo> out;
  DIR* d = opendir(dir_.c_str());
  if (!d) return out;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
  const std::string owner = s3::HexEncode(bucket) + "\n";
  while (dirent* e = readdir(d)) {
    std::string id = e->d_name, info;
    if (id.size() != 32 || !ReadWhole(dir_ + "/" + id + "/upload", &info) ||
        info.rfind(owner, 0) != 0)
      continue;
    size_t end = info.find('\n', owner.size());
    std::string hex = info.substr(owner.size(), end - owner.size()), key;
    for (size_t j = 0; j + 1 < hex.size(); j += 2)
      key.push_back(static_cast<char>(std::stoi(hex.substr(j, 2), nullptr, 16)));
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    struct stat st;
    if (stat((dir_ + "/" + id).c_str(), &st) != 0) continue;
    out.push_back({std::move(key), id,
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const UploadInfo& a, const UploadInfo& b) {
    return std::tie(a.key, a.initiated_ns, a.id) < std::tie(b.key, b.initiated_ns, b.id);
  });
  return out;
}

Result<std::string> MultipartUploads::Create(const std::string& bucket, const std::string& key,
                                             const UserMeta& user,
                                             const std::optional<UploadChecksum>& checksum) {
  if (auto r = backend_->BucketExists(bucket); !r) return tl::unexpected(r.error());
  if (!LocalBackend::ValidKey(key) || key.back() == '/')
    return MakeError(Errc::kInvalidArgument, "key '" + key + "' cannot be stored by this server");
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char id[33];
  snprintf(id, sizeof id, "%016llx%016llx", static_cast<unsigned long long>(rng()),
           static_cast<unsigned long long>(rng()));
  std::string dir = dir_ + "/" + id;
  if (mkdir(dir.c_str(), 0700) != 0) return tl::unexpected(ErrorFromErrno(errno, "mkdir " + dir));
  std::string info = s3::HexEncode(bucket) + "\n" + s3::HexEncode(key) + "\n";
  for (auto& [k, v] : user) info += s3::HexEncode(k) + "\n" + s3::HexEncode(v) + "\n";
  // "checksum" first: an upload whose "upload" exists is whole.
  auto w = checksum
               ? WriteSmallFile(dir + "/checksum", checksum->algorithm + " " + checksum->TypeName())
               : Result<void>{};
  if (w) w = WriteSmallFile(dir + "/upload", info);
  if (!w) {
    unlink((dir + "/checksum").c_str());
    rmdir(dir.c_str());
    return tl::unexpected(w.error());
  }
  return std::string(id);
}

Result<std::optional<UploadChecksum>> MultipartUploads::ChecksumIn(const std::string& dir) const {
  std::string text;
  if (!ReadWhole(dir + "/checksum", &text)) return std::nullopt;
  size_t space = text.find(' ');
  if (space == std::string::npos)
    return MakeError(Errc::kInternal, "corrupt checksum record in " + dir);
  return UploadChecksum{text.substr(0, space), text.substr(space + 1) == "FULL_OBJECT"};
}

Result<std::optional<UploadChecksum>> MultipartUploads::ChecksumOf(const std::string& bucket,
                                                                   const std::string& key,
                                                                   const std::string& id) const {
  auto dir = DirOf(bucket, key, id);
  if (!dir) return tl::unexpected(dir.error());
  return ChecksumIn(*dir);
}

Result<std::string> MultipartUploads::DirOf(const std::string& bucket, const std::string& key,
                                            const std::string& id) const {
  bool valid = id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
  std::string dir = dir_ + "/" + id, info;
  if (!valid || !ReadWhole(dir + "/upload", &info) ||
      info.rfind(s3::HexEncode(bucket) + "\n" + s3::HexEncode(key) + "\n", 0) != 0)
    return MakeError(Errc::kNoSuchUpload, "NoSuchUpload");
  return dir;
}

Result<PartInfo> MultipartUploads::StorePart(
    const std::string& dir, uint32_t number,
    const std::function<Result<std::pair<std::string, PartChecksum>>(int fd)>& write_body) {
  if (number < 1 || number > kMaxParts)
    return MakeError(Errc::kInvalidArgument, "Part number must be an integer between 1 and 10000");
  static std::atomic<uint64_t> seq{0};
  std::string tmp = dir + "/tmp-" + std::to_string(seq++);
  // Read-write: a copied part is read back for its MD5.
  int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) return MakeError(Errc::kNoSuchUpload, "NoSuchUpload");  // aborted
  if (fd < 0) return tl::unexpected(ErrorFromErrno(errno, "create " + tmp));
  auto written = write_body(fd);
  close(fd);
  std::string path = PartPath(dir, number);
  // The ETag and checksum files are written first: a part whose data file
  // exists is complete.
  Result<void> etag = written ? Result<void>{} : tl::unexpected(written.error());
  if (etag && !written->second.value.empty())
    etag =
        WriteSmallFile(path + ".checksum", written->second.algorithm + " " + written->second.value);
  else if (etag)
    unlink((path + ".checksum").c_str());  // an earlier upload of this number had one
  if (etag) etag = WriteSmallFile(path + ".etag", written->first);
  if (!etag || rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    struct stat st;
    if (stat(dir.c_str(), &st) != 0)  // aborted (or completed) while the body came in
      return MakeError(Errc::kNoSuchUpload, "NoSuchUpload");
    if (!etag) return tl::unexpected(etag.error());
    return tl::unexpected(ErrorFromErrno(err, "store part"));
  }
  return ReadPart(dir, number);
}

Result<PartInfo> MultipartUploads::ReadPart(const std::string& dir, uint32_t number) const {
  std::string path = PartPath(dir, number), etag;
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !ReadWhole(path + ".etag", &etag))
    return s3rdmafs::MakeS3Error(400, "InvalidPart",
                                 "part " + std::to_string(number) + " was not uploaded");
  PartInfo p;
  p.number = number;
  p.etag = "\"" + etag + "\"";
  std::string checksum;
  if (ReadWhole(path + ".checksum", &checksum) && checksum.find(' ') != std::string::npos)
    p.checksum = {checksum.substr(0, checksum.find(' ')), checksum.substr(checksum.find(' ') + 1)};
  p.size = static_cast<uint64_t>(st.st_size);
  p.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return p;
}

Result<PartInfo> MultipartUploads::UploadPart(
    const std::string& bucket, const std::string& key, const std::string& id, uint32_t number,
    const std::function<bool(const LocalBackend::Writer&)>& fill, const PartVerifier& verify,
    bool want_sha256) {
  auto dir = DirOf(bucket, key, id);
  if (!dir) return tl::unexpected(dir.error());
  return StorePart(*dir, number, [&](int fd) -> Result<std::pair<std::string, PartChecksum>> {
    auto digests = WriteDigested(fd, fill, want_sha256);
    if (!digests) return tl::unexpected(digests.error());
    auto checksum = verify(digests->first, digests->second);
    if (!checksum) return tl::unexpected(checksum.error());
    return std::make_pair(digests->first, *checksum);
  });
}

Result<PartInfo> MultipartUploads::CopyPart(const std::string& bucket, const std::string& key,
                                            const std::string& id, uint32_t number, int src_fd,
                                            uint64_t offset, uint64_t length) {
  auto dir = DirOf(bucket, key, id);
  if (!dir) return tl::unexpected(dir.error());
  auto upload_checksum = ChecksumIn(*dir);
  if (!upload_checksum) return tl::unexpected(upload_checksum.error());
  std::unique_ptr<Checksum> sum;
  if (*upload_checksum) sum = Checksum::Named((*upload_checksum)->algorithm);
  return StorePart(*dir, number, [&](int fd) -> Result<std::pair<std::string, PartChecksum>> {
    if (auto c = CopyRange(src_fd, offset, length, fd); !c) return tl::unexpected(c.error());
    // A part's ETag is the MD5 of its bytes; read them back from the page cache.
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_md5(), nullptr);
    std::vector<char> buf(1 << 20);
    for (uint64_t at = 0; at < length;) {
      ssize_t n = pread(fd, buf.data(), std::min<uint64_t>(buf.size(), length - at), at);
      if (n <= 0) {
        EVP_MD_CTX_free(ctx);
        return tl::unexpected(ErrorFromErrno(n < 0 ? errno : EIO, "read back part"));
      }
      EVP_DigestUpdate(ctx, buf.data(), n);
      if (sum) sum->Update(buf.data(), n);
      at += n;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    PartChecksum checksum;
    if (sum) checksum = {(*upload_checksum)->algorithm, sum->Base64()};
    return std::make_pair(s3::HexEncode(std::string_view(reinterpret_cast<char*>(md), len)),
                          checksum);
  });
}

Result<ObjectMeta> MultipartUploads::Complete(const std::string& bucket, const std::string& key,
                                              const std::string& id,
                                              const std::vector<CompletedPart>& parts,
                                              const WriteCondition& condition,
                                              const Claim& claimed) {
  auto dir = DirOf(bucket, key, id);
  if (!dir && dir.error().code == Errc::kNoSuchUpload) {
    // Completed already? Then this is a retry: the same answer, while the
    // object is still the one that upload made.
    std::string record;
    if (id.find_first_not_of("0123456789abcdef") == std::string::npos &&
        ReadWhole(dir_ + "/" + id + ".completed", &record) &&
        record.rfind(s3::HexEncode(bucket) + "\n" + s3::HexEncode(key) + "\n", 0) == 0) {
      auto obj = backend_->Stat(bucket, key);
      if (obj && record.substr(record.rfind('\n', record.size() - 2) + 1) == obj->etag + "\n")
        return *obj;
    }
  }
  if (!dir) return tl::unexpected(dir.error());
  if (parts.empty())
    return s3rdmafs::MakeS3Error(400, "MalformedXML", "a multipart upload needs a part");
  // A part number named twice in a row names that part once, by its last
  // entry (as radosgw takes it: a part uploaded again supersedes the ETag a
  // client listed first); any other step back is out of order.
  std::vector<CompletedPart> named;
  for (const auto& p : parts) {
    if (!named.empty() && p.number == named.back().number) {
      named.back() = p;
      continue;
    }
    if (!named.empty() && p.number < named.back().number)
      return s3rdmafs::MakeS3Error(400, "InvalidPartOrder", "part numbers must ascend");
    named.push_back(p);
  }
  auto upload_checksum = ChecksumIn(*dir);
  if (!upload_checksum) return tl::unexpected(upload_checksum.error());
  std::vector<PartInfo> chosen;
  for (size_t i = 0; i < named.size(); ++i) {
    const std::string number = std::to_string(named[i].number);
    auto p = ReadPart(*dir, named[i].number);
    if (!p) return tl::unexpected(p.error());
    if (Unquote(p->etag) != Unquote(named[i].etag))
      return s3rdmafs::MakeS3Error(400, "InvalidPart", "part " + number + " has ETag " + p->etag);
    if (i + 1 < named.size() && p->size < kMinPartSize)
      return s3rdmafs::MakeS3Error(400, "EntityTooSmall",
                                   "part " + number + " is smaller than 5 MiB and not the last");
    // A part checksum the request names must be the one the part came with.
    const PartChecksum& told = named[i].checksum;
    if (*upload_checksum && !told.value.empty() &&
        (told.algorithm != p->checksum.algorithm || told.value != p->checksum.value))
      return s3rdmafs::MakeS3Error(
          400, "InvalidPart",
          "part " + number + " was uploaded with " +
              (p->checksum.value.empty()
                   ? std::string("no checksum")
                   : ChecksumElement(p->checksum.algorithm) + " " + p->checksum.value) +
              ", not the " + ChecksumElement(told.algorithm) + " " + told.value + " named");
    if (*upload_checksum && p->checksum.algorithm != (*upload_checksum)->algorithm)
      return s3rdmafs::MakeS3Error(
          400, "InvalidPart",
          "part " + number + " carries no " + ChecksumElement((*upload_checksum)->algorithm));
    chosen.push_back(*p);
  }
  // The object's checksum, from the parts', checked against the one claimed.
  std::string object_checksum;
  if (!claimed.type.empty() &&
      (!*upload_checksum || claimed.type != (*upload_checksum)->TypeName()))
    return s3rdmafs::MakeS3Error(
        400, "InvalidRequest",
        "x-amz-checksum-type " + claimed.type + " is not the upload's (" +
            (*upload_checksum ? (*upload_checksum)->TypeName() : std::string("none")) + ")");
  if (*upload_checksum) {
    std::vector<std::pair<std::string, uint64_t>> sums;
    sums.reserve(chosen.size());
    for (const auto& p : chosen) sums.emplace_back(p.checksum.value, p.size);
    auto combined = CombinePartChecksums(**upload_checksum, sums);
    if (!combined) return tl::unexpected(combined.error());
    object_checksum = *combined;
  }
  if (!claimed.checksum.value.empty()) {
    if (!*upload_checksum || claimed.checksum.algorithm != (*upload_checksum)->algorithm)
      return s3rdmafs::MakeS3Error(
          400, "InvalidRequest",
          "x-amz-checksum-" + claimed.checksum.algorithm + " names another algorithm than the " +
              (*upload_checksum ? (*upload_checksum)->algorithm : std::string("none")) +
              " the upload was created with");
    // A composite value may be claimed with or without its "-<count>".
    const std::string bare = object_checksum.substr(0, object_checksum.find('-'));
    if (claimed.checksum.value != object_checksum && claimed.checksum.value != bare)
      return s3rdmafs::MakeS3Error(400, "BadDigest",
                                   "The x-amz-checksum-" + claimed.checksum.algorithm +
                                       " you specified (" + claimed.checksum.value +
                                       ") did not match the calculated checksum (" +
                                       object_checksum + ")");
  }
  std::string info;
  ReadWhole(*dir + "/upload", &info);
  UserMeta user;
  std::istringstream lines(info);
  std::string line, name;
  for (int i = 0; std::getline(lines, line); ++i) {
    if (i < 2) continue;  // bucket and key
    std::string decoded;
    for (size_t j = 0; j + 1 < line.size(); j += 2)
      decoded.push_back(static_cast<char>(std::stoi(line.substr(j, 2), nullptr, 16)));
    if (i % 2 == 0)
      name = decoded;
    else
      user.emplace_back(name, decoded);
  }
  if (*upload_checksum) {
    user.emplace_back("x-amz-checksum-" + (*upload_checksum)->algorithm, object_checksum);
    user.emplace_back("x-amz-checksum-type", (*upload_checksum)->TypeName());
  }
  auto published = backend_->Publish(
      bucket, key, user,
      [&](int fd) -> Result<std::string> {
        std::string digests;
        for (auto& p : chosen) {
          int in = open(PartPath(*dir, p.number).c_str(), O_RDONLY | O_CLOEXEC);
          if (in < 0) return tl::unexpected(ErrorFromErrno(errno, "open part"));
          auto c = CopyRange(in, 0, p.size, fd);
          close(in);
          if (!c) return tl::unexpected(c.error());
          std::string hex = Unquote(p.etag);
          for (size_t j = 0; j + 1 < hex.size(); j += 2)
            digests.push_back(static_cast<char>(std::stoi(hex.substr(j, 2), nullptr, 16)));
        }
        // S3's multipart ETag: MD5 of the parts' binary MD5s, then "-<count>".
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_Digest(digests.data(), digests.size(), md, &len, EVP_md5(), nullptr);
        std::vector<LocalBackend::PartRecord> records;
        records.reserve(chosen.size());
        for (auto& p : chosen)
          records.push_back({p.size, *upload_checksum ? p.checksum.value : ""});
        LocalBackend::SetParts(fd, records);
        return s3::HexEncode(std::string_view(reinterpret_cast<char*>(md), len)) + "-" +
               std::to_string(chosen.size());
      },
      condition);  // a failed condition keeps the upload: the client may retry or abort
  if (published) {
    WriteSmallFile(
        dir_ + "/" + id + ".completed",
        s3::HexEncode(bucket) + "\n" + s3::HexEncode(key) + "\n" + published->etag + "\n");
    Abort(bucket, key, id);  // the parts are in the object now
  }
  return published;
}

Result<void> MultipartUploads::Abort(const std::string& bucket, const std::string& key,
                                     const std::string& id) {
  auto dir = DirOf(bucket, key, id);
  if (!dir) return tl::unexpected(dir.error());
  // "upload" goes first, so a crash half-way leaves an unknown upload, not a broken one.
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
  unlink((*dir + "/upload").c_str());
  if (DIR* d = opendir(dir->c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') unlink((*dir + "/" + e->d_name).c_str());
    closedir(d);
  }
  rmdir(dir->c_str());
  return {};
}

Result<std::vector<PartInfo>> MultipartUploads::ListParts(const std::string& bucket,
                                                          const std::string& key,
                                                          const std::string& id) {
  auto dir = DirOf(bucket, key, id);
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
  if (!dir) return tl::unexpected(dir.error());
  std::vector<PartInfo> out;
  if (DIR* d = opendir(dir->c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind("part-", 0) != 0 || n.find('.') != std::string::npos) continue;
      if (auto p = ReadPart(*dir, static_cast<uint32_t>(std::stoul(n.substr(5)))))
        out.push_back(*p);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end(),
            [](const PartInfo& a, const PartInfo& b) { return a.number < b.number; });
  return out;
}

}  // namespace s3rdma::server
