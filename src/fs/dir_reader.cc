// Directory listing: one streaming pass over ListObjectsV2 pages. A handle
// keeps only the current page and the continuation token, so listing a
// 100,000-key prefix costs one page of memory here (the kernel's readdirplus
// references keep the inodes it links).
#include <sys/stat.h>

#include <algorithm>
#include <future>

#include "attribute_prefetcher.h"
#include "dir_records.h"
#include "open_files.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {
namespace {

// Files a listing HEADs to learn whether a directory without a record (or
// with files it does not vouch for) carries x-amz-meta-* at all.
constexpr uint32_t kMetaSample = 4;

// Names the kernel cannot take: empty (from "a//b"), ".", "..", over 255
// bytes, or holding a NUL. Logged once per listing page, never fatal.
bool UsableName(std::string_view name, std::string_view full) {
  if (name.empty() || name == "." || name == ".." || name.size() > 255 ||
      name.find('\0') != std::string_view::npos) {
    LOG_WARN("skipping key '%.*s': cannot be a file name", static_cast<int>(full.size()),
             full.data());
    return false;
  }
  return true;
}

}  // namespace

Result<uint64_t> Filesystem::OpenDir(uint64_t ino) {
  auto v = inodes_.Get(ino);
  if (!v) return MakeError(Errc::kNotFound, "stale inode");
  if (!v->is_dir) return MakeError(Errc::kNotDir, "not a directory");
  auto d = std::make_shared<DirHandle>();
  d->ino = ino;
  d->prefix = v->key;
  return open_->AddDir(std::move(d));
}

void Filesystem::ReleaseDir(uint64_t dh) { open_->DropDir(dh); }

// Replaces the handle's page with the next one; false when the listing ended.
Result<bool> Filesystem::FetchDirPage(DirHandle* d) {
  if (d->started && d->next_token.empty()) {
    d->page_start += d->page.size();
    d->page.clear();
    if (!d->local_names.empty()) {  // created here, not uploaded yet: listed last
      for (auto& name : d->local_names) {
        s3::ObjectInfo info;
        info.key = d->prefix + name;
        d->page.push_back({name, false, std::move(info)});
      }
      d->local_names.clear();
      return true;
    }
    d->done = true;
    return false;
  }
  s3::ListRequest req;
  req.prefix = d->prefix;
  req.delimiter = "/";
  req.continuation_token = d->next_token;
  auto page = store_->List(req);
  if (!page) return tl::unexpected(page.error());
  d->page_start += d->page.size();
  d->page.clear();
  d->started = true;
  d->next_token = page->next_token;
  for (auto& cp : page->common_prefixes) {
    if (cp.size() <= d->prefix.size() || cp.compare(0, d->prefix.size(), d->prefix) != 0) continue;
    std::string_view name(cp);
    name.remove_prefix(d->prefix.size());
    name.remove_suffix(1);                                            // the delimiter
    if (d->ino == meta::kRootIno && name == kPreservedDir) continue;  // the mount's own
    if (UsableName(name, cp)) d->page.push_back({std::string(name), true, {}});
  }
  for (auto& obj : page->objects) {
    if (obj.key.size() <= d->prefix.size() || obj.key.compare(0, d->prefix.size(), d->prefix) != 0)
      continue;  // the directory's own marker object ("dir/")
    std::string_view name(obj.key);
    name.remove_prefix(d->prefix.size());
    if (!UsableName(name, obj.key)) continue;
    d->page.push_back({std::string(name), false, std::move(obj)});
  }
  for (auto& item : d->page) {  // listed by the store after all: not a local extra
    auto it = std::lower_bound(d->local_names.begin(), d->local_names.end(), item.name);
    if (it != d->local_names.end() && *it == item.name) d->local_names.erase(it);
  }
  // S3 order, with a directory shadowing a same-named object on this page.
  std::stable_sort(d->page.begin(), d->page.end(), [](const auto& a, const auto& b) {
    return a.name != b.name ? a.name < b.name : a.is_dir > b.is_dir;
  });
  d->page.erase(std::unique(d->page.begin(), d->page.end(),
                            [](const auto& a, const auto& b) { return a.name == b.name; }),
                d->page.end());
  return true;
}

Result<void> Filesystem::ReadDir(uint64_t dh, uint64_t offset, bool plus,
                                 const std::function<bool(const DirEntry&)>& emit) {
  std::shared_ptr<DirHandle> d = open_->Dir(dh);
  if (!d) return MakeError(Errc::kInvalidArgument, "bad directory handle");
  std::lock_guard lock(d->mu);
  auto self = inodes_.Get(d->ino);
  if (!self) return MakeError(Errc::kNotFound, "stale inode");
  Attributes dir_attr = ToAttributes(*self);
  for (; offset < 2; ++offset) {
    DirEntry e{offset == 0 ? "." : "..", dir_attr, offset + 1};
    if (!emit(e)) return {};
  }
  if (!plus) d->whole_pass = false;
  if (!d->started || offset < d->page_start) {  // first call, or a seek back: restart
    d->whole_pass = plus;
    d->removals_at_start = inodes_.RemovalCount(d->ino);
    d->page.clear();
    d->page_start = 2;
    d->next_token.clear();
    d->started = false;
    d->done = false;
    d->local_names.clear();
    if (inodes_.local_count() > 0)  // only while something is unsaved: this directory's range
      for (auto& child : inodes_.Children(d->ino))
        if (child.local && child.version.etag.empty() && !child.is_dir)
          d->local_names.push_back(child.name);
    std::sort(d->local_names.begin(), d->local_names.end());
    // The directory's record comes in alongside the first page.
    std::promise<meta::DirRecord> record;
    const bool with_record = plus && records_;
    if (with_record)
      records_->ReadAsync(d->prefix,
                          [&record](meta::DirRecord r) { record.set_value(std::move(r)); });
    auto r = FetchDirPage(d.get());
    d->record = with_record ? record.get_future().get() : meta::DirRecord{};
    if (!r) return tl::unexpected(r.error());
  }
  for (;;) {
    while (offset >= d->page_start + d->page.size()) {
      if (!d->done) {
        auto more = FetchDirPage(d.get());
        if (!more) return tl::unexpected(more.error());
        if (*more) continue;
      }
      // The end: with every name of this pass in the table, lookups of
      // other names need not ask the store for entry_ttl.
      if (d->whole_pass) inodes_.MarkListed(d->ino, d->removals_at_start);
      d->whole_pass = false;
      return {};
    }
    const auto& item = d->page[offset - d->page_start];
    DirEntry e;
    e.name = item.name;
    e.next_offset = offset + 1;
    if (plus) {
      uint64_t ino = item.is_dir ? inodes_.UpsertDir(d->ino, item.name)
                                 : inodes_.UpsertFile(d->ino, item.name, item.info);
      auto view = inodes_.Get(ino);
      if (!view) {  // forgotten by a racing FORGET: list it next time
        d->whole_pass = false;
        ++offset;
        continue;
      }
      // x-amz-meta-* not known for this version (LIST never says).
      auto attrs_unknown = [this](const meta::InodeView& v) {
        return !v.local && options_.object_attributes && !v.version.posix_known;
      };
      if (!view->is_dir && !d->record.empty()) {
        auto rec = d->record.find(item.name);
        if (rec != d->record.end() &&
            inodes_.ApplyRecord(ino, rec->second.etag, rec->second.size, rec->second.posix,
                                rec->second.link_target))
          view = inodes_.Get(ino);
      }
      if (view && !view->is_dir && attrs_unknown(*view) && records_ && !d->carries_meta &&
          d->sampled < kMetaSample) {
        // Not vouched for: do this directory's files carry x-amz-meta-*
        // (s3fs wrote them)? A few HEADs tell; then per-file HEADs, as
        // without records, else the listing's attributes for the rest.
        ++d->sampled;
        std::promise<Result<s3::ObjectInfo>> got;
        FetchFileAttributes(ino, view->key, view->version.size, options_.small_file_read,
                            [&got](Result<s3::ObjectInfo> r) { got.set_value(std::move(r)); });
        auto info = got.get_future().get();
        if (info && info->has_meta && meta::ParsePosixMeta(info->meta).mode != 0)
          d->carries_meta = true;
        view = inodes_.Get(ino);
      }
      if (view && view->replaced) {  // the name has a new inode of its real type
        ino = inodes_.UpsertFile(d->ino, item.name, item.info);
        view = inodes_.Get(ino);
      }
      if (!view) {
        d->whole_pass = false;
        ++offset;
        continue;
      }
      e.attr = ToAttributes(*view);
      if (!view->is_dir) open_->Overlay(ino, &e.attr.size, nullptr);
      // LIST carries no x-amz-meta-*: with per-file HEADs, the kernel should
      // ask (GETATTR -> HEAD); with records, what they do not vouch for shows
      // the listing's attributes until the file's own lookup, open or stat.
      // A directory's marker attributes are not in records: its GETATTR asks.
      const bool unknown = attrs_unknown(*view);
      e.attr_provisional = unknown && (view->is_dir || !records_ || d->carries_meta);
      if (unknown && !e.attr_provisional) inodes_.MarkTypeGuessed(ino);
      if (!emit(e)) {
        inodes_.DropIfUnreferenced(ino);
        return {};
      }
      // A provisional file goes out without an entry (no reference taken).
      if (!(e.attr_provisional && !view->is_dir))
        inodes_.IncLookup(ino);
      else
        prefetcher_->Add(ino, view->key);
    } else {
      e.attr.ino = kUnknownIno;
      e.attr.mode = item.is_dir ? S_IFDIR : S_IFREG;
      if (!emit(e)) return {};
    }
    ++offset;
  }
}

}  // namespace s3rdmafs::fs
