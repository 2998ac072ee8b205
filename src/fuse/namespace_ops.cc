#include <sys/stat.h>

#include <cerrno>

#include "ops.h"

namespace s3rdmafs::fuse {
namespace {

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  auto r = Fs(req)->Mkdir(parent, name, mode, CallerOf(req));
  if (!r) return ReplyError(req, r.error(), "mkdir");
  ReplyEntry(req, *r);
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = Fs(req)->Rmdir(parent, name);
  if (!r) return ReplyError(req, r.error(), "rmdir");
  fuse_reply_err(req, 0);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = Fs(req)->Unlink(parent, name);
  if (!r) return ReplyError(req, r.error(), "unlink");
  fuse_reply_err(req, 0);
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
            const char* new_name, unsigned int flags) {
  auto r = Fs(req)->Rename(parent, name, new_parent, new_name, flags);
  if (!r) return ReplyError(req, r.error(), "rename");
  fuse_reply_err(req, 0);
}

void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  auto r = Fs(req)->Symlink(target, parent, name, CallerOf(req));
  if (!r) return ReplyError(req, r.error(), "symlink");
  ReplyEntry(req, *r);
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = Fs(req)->Readlink(ino);
  if (!r) return ReplyError(req, r.error(), "readlink");
  fuse_reply_readlink(req, r->c_str());
}

// Hard links cannot be had on an object store (two keys are two objects).
void Link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }

// mknod(2): an empty object; FIFOs, sockets and devices keep their type in
// the mode (as s3fs stores them), so the kernel handles them locally.
void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  auto r = Fs(req)->Mknod(parent, name, mode, rdev, CallerOf(req));
  if (!r) return ReplyError(req, r.error(), "mknod");
  ReplyEntry(req, *r);
}

}  // namespace

void AddNamespaceOps(fuse_lowlevel_ops* ops) {
  ops->mkdir = Mkdir;
  ops->rmdir = Rmdir;
  ops->unlink = Unlink;
  ops->rename = Rename;
  ops->symlink = Symlink;
  ops->readlink = Readlink;
  ops->link = Link;
  ops->mknod = Mknod;
}

}  // namespace s3rdmafs::fuse
