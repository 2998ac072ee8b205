#include <vector>

#include "ops.h"

namespace s3rdmafs::fuse {
namespace {

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = Fs(req)->OpenDir(ino);
  if (!r) return ReplyError(req, r.error(), "opendir");
  fi->fh = *r;
  fi->cache_readdir = 0;
  fuse_reply_open(req, fi);
}

void ReadDirCommon(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  std::vector<char> buf(size);
  size_t used = 0;
  fs::Filesystem* fs = Fs(req);
  auto r = fs->ReadDir(fi->fh, static_cast<uint64_t>(off), plus, [&](const fs::DirEntry& e) {
    std::string name(e.name);
    size_t need;
    if (plus) {
      fuse_entry_param p = {};
      p.attr = ToStat(e.attr);
      if (e.name != "." && e.name != "..") {
        p.ino = e.attr.ino;
        p.attr_timeout = fs->attr_timeout();
        p.entry_timeout = fs->entry_timeout();
        if (e.attr_provisional) {
          // Attributes from LIST alone: a directory's are refreshed at the
          // next stat (GETATTR reads its marker); a file gets no entry at all
          // (ino 0), so the kernel LOOKUPs it - its type may be a symlink,
          // and the kernel must never see a type change for one inode.
          if (S_ISDIR(e.attr.mode))
            p.attr_timeout = 0;
          else
            p.ino = 0;
        }
      }
      need = fuse_add_direntry_plus(req, buf.data() + used, size - used, name.c_str(), &p,
                                    static_cast<off_t>(e.next_offset));
    } else {
      struct stat st = ToStat(e.attr);
      need = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st,
                               static_cast<off_t>(e.next_offset));
    }
    if (need > size - used) return false;
    used += need;
    return true;
  });
  // Entries already placed are returned even if a later page failed; the
  // error surfaces on the next call.
  if (!r && used == 0) return ReplyError(req, r.error(), plus ? "readdirplus" : "readdir");
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, size, off, fi, false);
}
void ReadDirPlus(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, size, off, fi, true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Fs(req)->ReleaseDir(fi->fh);
  fuse_reply_err(req, 0);
}

}  // namespace

void AddDirOps(fuse_lowlevel_ops* ops) {
  ops->opendir = OpenDir;
  ops->readdir = ReadDir;
  ops->readdirplus = ReadDirPlus;
  ops->releasedir = ReleaseDir;
}

}  // namespace s3rdmafs::fuse
