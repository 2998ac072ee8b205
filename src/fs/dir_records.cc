#include "dir_records.h"

#include <future>

#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fs {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kFirstRead = 256 << 10;  // most records come whole in the first GET
constexpr int kAttempts = 4;              // conflicts with other mounts' writes
// A large record is rewritten at most at this pace (a 10 MB record for a
// 100,000-file directory: every 5 s while files keep landing there).
constexpr double kRewriteBytesPerSecond = 2e6;

struct Fetched {
  meta::DirRecord record;
  std::string etag;  // "" when there is no record
};

// The record and its ETag; NoSuchKey is an empty record.
void Fetch(s3::ObjectStore* store, const std::string& key,
           const std::function<void(Result<Fetched>)>& done) {
  auto buf = std::make_shared<std::vector<std::byte>>(kFirstRead);
  store->HeadWithBodyAsync(
      key, *buf, [store, key, buf, done](Result<s3::ObjectStore::HeadWithBody> r) {
        if (!r) {
          if (r.error().code == Errc::kNoSuchKey) return done(Fetched{});
          return done(tl::unexpected(r.error()));
        }
        auto finish = [buf, done, etag = r->info.etag](uint64_t total) {
          auto rec = meta::DecodeDirRecord(
              std::string_view(reinterpret_cast<const char*>(buf->data()), total));
          if (!rec) return done(tl::unexpected(rec.error()));
          done(Fetched{std::move(*rec), etag});
        };
        const uint64_t size = r->info.size;
        if (r->bytes == size) return finish(size);
        const uint64_t got = r->bytes;
        buf->resize(size);
        s3::GetRequest get;
        get.key = key;
        get.offset = got;
        get.length = size - got;
        get.if_match = r->info.etag;
        get.into.emplace_back(buf->data() + got, size - got);
        store->GetAsync(std::move(get), [finish, size, done](Result<s3::GetResult> g) {
          if (!g) return done(tl::unexpected(g.error()));
          finish(size);
        });
      });
}

Result<Fetched> FetchSync(s3::ObjectStore* store, const std::string& key) {
  std::promise<Result<Fetched>> p;
  Fetch(store, key, [&p](Result<Fetched> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

}  // namespace

DirRecords::DirRecords(Options options, s3::ObjectStore* store, meta::InodeTable* inodes)
    : options_(std::move(options)), store_(store), inodes_(inodes) {
  if (options_.write) writer_ = std::thread([this] { Run(); });
}

DirRecords::~DirRecords() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

std::string DirRecords::KeyFor(const std::string& dir_key) const {
  // dir_key is the full key prefix; the record is named relative to the mount.
  std::string rel = dir_key.substr(std::min(dir_key.size(), options_.root_prefix.size()));
  return options_.root_prefix + ".s3rdmafs-preserved/records/" + rel + "@";
}

void DirRecords::ReadAsync(const std::string& dir_key,
                           const std::function<void(meta::DirRecord)>& done) {
  std::string key = KeyFor(dir_key);
  Fetch(store_, key, [key, done](Result<Fetched> r) {
    if (!r) {
      LOG_WARN("directory record '%s' not used: %s", key.c_str(), r.error().ToString().c_str());
      return done({});
    }
    done(std::move(r->record));
  });
}

void DirRecords::MoveTree(const std::string& old_dir_key, const std::string& new_dir_key) {
  if (!options_.write) return;
  const std::string from = KeyFor(old_dir_key), to = KeyFor(new_dir_key);
  // Records of the tree: "<old>@" and "<old>sub/@", all under "<old>".
  const std::string old_tree = from.substr(0, from.size() - 1);
  const std::string new_tree = to.substr(0, to.size() - 1);
  s3::ListRequest lr;
  lr.prefix = old_tree;
  for (;;) {
    auto page = store_->List(lr);
    if (!page) {
      LOG_WARN("directory records under '%s' not moved: %s", old_tree.c_str(),
               page.error().ToString().c_str());
      return;
    }
    for (const auto& obj : page->objects) {
      if (obj.key.back() != '@') continue;
      const std::string dest = new_tree + obj.key.substr(old_tree.size());
      if (auto c = store_->Copy(obj.key, obj.etag, dest, nullptr); !c) {
        LOG_WARN("directory record '%s' not moved: %s", obj.key.c_str(),
                 c.error().ToString().c_str());
        continue;
      }
      (void)store_->Delete(obj.key);
    }
    if (page->next_token.empty()) return;
    lr.continuation_token = page->next_token;
  }
}

void DirRecords::Forget(const std::string& dir_key) {
  if (options_.write) (void)store_->Delete(KeyFor(dir_key));
}

void DirRecords::MarkLocked(uint64_t dir_ino) {
  auto [it, fresh] = pending_.try_emplace(dir_ino);
  if (!fresh) return;  // already due: the write reads the table then
  auto due = Clock::now() + options_.delay;
  if (auto w = written_.find(dir_ino); w != written_.end())
    due = std::max(due, w->second.at + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(w->second.bytes /
                                                                         kRewriteBytesPerSecond)));
  it->second.due = due;
  wake_.notify_all();
}

void DirRecords::Changed(uint64_t dir_ino) {
  if (!options_.write) return;
  std::lock_guard lock(mu_);
  MarkLocked(dir_ino);
}

void DirRecords::Removed(uint64_t dir_ino, std::string name) {
  if (!options_.write) return;
  std::lock_guard lock(mu_);
  MarkLocked(dir_ino);
  pending_[dir_ino].removed.insert(std::move(name));
}

bool DirRecords::FlushAll(std::chrono::milliseconds budget) {
  std::unique_lock lock(mu_);
  if (!options_.write || (pending_.empty() && !writing_)) return true;
  flush_now_ = true;
  wake_.notify_all();
  bool done = flushed_.wait_for(lock, budget, [this] { return pending_.empty() && !writing_; });
  flush_now_ = false;
  if (!done)
    LOG_WARN(
        "%zu directory records not written at unmount (their listings will cost a HEAD per "
        "file until rewritten)",
        pending_.size());
  return done;
}

void DirRecords::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    uint64_t dir = 0;
    for (auto& [ino, p] : pending_) {
      if (flush_now_ || p.due <= now) {
        dir = ino;
        break;
      }
      next = std::min(next, p.due);
    }
    if (!dir) {
      for (auto it = written_.begin(); it != written_.end();)  // pacing long past
        it = now - it->second.at > std::chrono::minutes(1) ? written_.erase(it) : std::next(it);
      if (next == Clock::time_point::max())
        wake_.wait(lock);
      else
        wake_.wait_until(lock, next);
      continue;
    }
    std::set<std::string> removed = std::move(pending_[dir].removed);
    pending_.erase(dir);
    writing_ = true;
    lock.unlock();
    auto wrote = WriteOne(dir, removed);
    lock.lock();
    writing_ = false;
    if (wrote) {
      written_[dir] = {Clock::now(), *wrote};
    } else {
      LOG_WARN("directory record of inode %llu not written (tried again in 5 s): %s",
               static_cast<unsigned long long>(dir), wrote.error().ToString().c_str());
      auto& p = pending_[dir];  // again later, with what came in meanwhile
      p.removed.insert(removed.begin(), removed.end());
      p.due = Clock::now() + std::chrono::seconds(5);
      if (flush_now_) {  // unmount: one try only
        pending_.erase(dir);
        LOG_WARN("directory record of inode %llu dropped at unmount",
                 static_cast<unsigned long long>(dir));
      }
    }
    flushed_.notify_all();
  }
}

Result<size_t> DirRecords::WriteOne(uint64_t dir_ino, const std::set<std::string>& removed) {
  auto dir = inodes_->Get(dir_ino);
  if (!dir || !dir->is_dir) return 0;  // forgotten or gone: nothing to keep
  const std::string key = KeyFor(dir->key);
  for (int attempt = 0;; ++attempt) {
    auto current = FetchSync(store_, key);
    if (!current && current.error().code == Errc::kProtocol) {
      LOG_WARN("directory record '%s' is unreadable and is rewritten: %s", key.c_str(),
               current.error().message.c_str());
      current = Fetched{};
      if (auto head = store_->Head(key)) current->etag = head->etag;
    }
    if (!current) return tl::unexpected(current.error());
    meta::DirRecord next = current->record;
    std::set<std::string, std::less<>> present;
    for (const auto& child : inodes_->Children(dir_ino)) {
      if (child.is_dir || child.local || !child.version.posix_known ||
          child.version.posix.mode == 0 || child.version.etag.empty())
        continue;
      present.insert(child.name);
      meta::RecordEntry e;
      e.etag = s3::BareEtag(child.version.etag);
      e.size = child.version.size;
      e.posix = child.version.posix;
      e.link_target = child.version.link_target;
      auto old = next.find(child.name);
      if (e.link_target.empty() && old != next.end() && old->second.etag == e.etag)
        e.link_target = old->second.link_target;  // same version: same target
      next.insert_or_assign(child.name, std::move(e));
    }
    for (const auto& name : removed)
      if (!present.count(name)) next.erase(name);
    if (next == current->record && !current->etag.empty()) return 0;  // says it all already
    std::string body = meta::EncodeDirRecord(next);
    s3::PutRequest put;
    put.key = key;
    put.body.emplace_back(reinterpret_cast<const std::byte*>(body.data()), body.size());
    put.meta[":content-type"] = "text/plain; charset=utf-8";
    if (current->etag.empty())
      put.condition.if_none_match = true;
    else
      put.condition.if_match = current->etag;
    auto r = store_->Put(std::move(put));
    if (r) return body.size();
    if (r.error().code != Errc::kPreconditionFailed || attempt + 1 == kAttempts)
      return tl::unexpected(r.error());
    // Another mount wrote it since: merge into theirs.
  }
}

}  // namespace s3rdmafs::fs
