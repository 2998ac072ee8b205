// UploadJournal: which multipart uploads this mount has started and not yet
// completed or aborted, in a small append-only file in the staging
// directory. A mount killed mid-upload leaves its journal behind; the next
// mount of the same endpoint, bucket and prefix on this host aborts exactly
// those uploads (never another client's) and removes the journal.
//
// The file exists only while an upload is open, so an idle mount leaves
// nothing in the staging directory. A live mount holds an exclusive flock on its journal, so two
// mounts of the same scope never take each other's uploads for leftovers. Lines are appended with
// one write(2) each ("B <id> <key>", "E <id>"), so a killed daemon leaves whole lines; a host crash
// may lose the last ones (the server's own upload expiry is the backstop). Thread-safety: Begin and
// End may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::fs {

struct OpenUpload {
  std::string key, upload_id;
};

class UploadJournal {
 public:
  // Opens this mount's journal for `scope` in `dir`; `leftovers` gets the
  // uploads that dead mounts of the same scope left open (their journals
  // are removed: the caller aborts them).
  static Result<std::unique_ptr<UploadJournal>> Open(const std::string& dir,
                                                     const std::string& scope,
                                                     std::vector<OpenUpload>* leftovers);
  ~UploadJournal();
  UploadJournal(const UploadJournal&) = delete;
  UploadJournal& operator=(const UploadJournal&) = delete;

  void Begin(const std::string& key, const std::string& upload_id);
  void End(const std::string& upload_id);

 private:
  explicit UploadJournal(std::string path) : path_(std::move(path)) {}
  void Append(const std::string& line);
  void Compact();  // rewrites only the open uploads (under mu_)

  const std::string path_;
  std::mutex mu_;
  int fd_ = -1;  // the file exists only while an upload is open; guarded by mu_
  std::unordered_map<std::string, std::string> open_;  // id -> key; guarded by mu_
  uint64_t bytes_ = 0;                                 // guarded by mu_
};

// Parses a journal's text: the uploads begun and not ended.
std::vector<OpenUpload> OpenUploadsIn(const std::string& text);

}  // namespace s3rdmafs::fs
