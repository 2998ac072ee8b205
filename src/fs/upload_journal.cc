#include "upload_journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {
namespace {

constexpr uint64_t kCompactAt = 1 << 20;

std::string ScopeTag(const std::string& scope) {
  char buf[32];
  snprintf(buf, sizeof buf, "%016zx", std::hash<std::string>{}(scope));
  return std::string("s3rdmafs-uploads-") + buf + "-";
}

// Keys may hold any byte: '\n' and '%' are escaped so a line stays a line.
std::string Escape(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '%' ? "%25" : c == '\n' ? "%0A" : std::string(1, c);
  return out;
}

std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && s.compare(i, 3, "%25") == 0) {
      out += '%';
      i += 2;
    } else if (s[i] == '%' && s.compare(i, 3, "%0A") == 0) {
      out += '\n';
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::vector<OpenUpload> OpenUploadsIn(const std::string& text) {
  std::vector<OpenUpload> order;
  std::unordered_map<std::string, size_t> at;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 3 || line[1] != ' ') continue;  // a torn or unknown line
    if (line[0] == 'B') {
      size_t sp = line.find(' ', 2);
      if (sp == std::string::npos) continue;
      at[line.substr(2, sp - 2)] = order.size();
      order.push_back({Unescape(line.substr(sp + 1)), line.substr(2, sp - 2)});
    } else if (line[0] == 'E') {
      auto it = at.find(line.substr(2));
      if (it != at.end()) order[it->second].upload_id.clear();
    }
  }
  std::vector<OpenUpload> out;
  for (auto& u : order)
    if (!u.upload_id.empty()) out.push_back(std::move(u));
  return out;
}

Result<std::unique_ptr<UploadJournal>> UploadJournal::Open(const std::string& dir,
                                                           const std::string& scope,
                                                           std::vector<OpenUpload>* leftovers) {
  const std::string tag = ScopeTag(scope);
  if (DIR* d = opendir(dir.c_str())) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR* is private to this call
    while (dirent* e = readdir(d)) {
      if (strncmp(e->d_name, tag.c_str(), tag.size()) != 0) continue;
      std::string path = dir + "/" + e->d_name;
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      if (flock(fd, LOCK_EX | LOCK_NB) == 0) {  // nobody holds it: its mount is gone
        std::ifstream in(path);
        std::stringstream text;
        text << in.rdbuf();
        for (auto& u : OpenUploadsIn(text.str())) leftovers->push_back(std::move(u));
        unlink(path.c_str());
      }
      close(fd);
    }
    closedir(d);
  }
  static std::atomic<uint32_t> seq{0};  // several mounts (or tests) in one process
  std::string path =
      dir + "/" + tag + std::to_string(getpid()) + "-" + std::to_string(seq++) + ".log";
  if (access(dir.c_str(), W_OK) != 0)
    return MakeError(Errc::kConfig, "write.staging_dir: '" + dir + "' is not writable");
  return std::unique_ptr<UploadJournal>(new UploadJournal(path));
}

UploadJournal::~UploadJournal() {
  std::lock_guard lock(mu_);
  if (fd_ >= 0) close(fd_);  // uploads still open: the next mount aborts them
}

void UploadJournal::Append(const std::string& line) {
  if (fd_ < 0) {
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0 || flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      LOG_WARN("upload journal '%s': %s (a crash now would leave its uploads to expire)",
               path_.c_str(), ErrnoText(errno));
      if (fd_ >= 0) close(fd_);
      fd_ = -1;
      return;
    }
  }
  if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    LOG_WARN("upload journal '%s': %s", path_.c_str(), ErrnoText(errno));
  bytes_ += line.size();
}

void UploadJournal::Begin(const std::string& key, const std::string& upload_id) {
  std::lock_guard lock(mu_);
  open_[upload_id] = key;
  Append("B " + upload_id + " " + Escape(key) + "\n");
}

void UploadJournal::End(const std::string& upload_id) {
  std::lock_guard lock(mu_);
  if (!open_.erase(upload_id)) return;
  if (open_.empty() && fd_ >= 0) {  // nothing left to recover: no file at rest
    unlink(path_.c_str());
    close(fd_);
    fd_ = -1;
    bytes_ = 0;
    return;
  }
  Append("E " + upload_id + "\n");
  if (bytes_ > kCompactAt) Compact();
}

void UploadJournal::Compact() {
  if (fd_ < 0 || ftruncate(fd_, 0) != 0) return;
  bytes_ = 0;
  for (auto& [id, key] : open_) Append("B " + id + " " + Escape(key) + "\n");
}

}  // namespace s3rdmafs::fs
