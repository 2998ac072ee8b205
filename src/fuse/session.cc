#include <unistd.h>

#include <csignal>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "ops.h"
#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/common/log.h"

namespace s3rdmafs::fuse {

Result<void> MountAndServe(fs::Filesystem* fs, const MountOptions& options,
                           const std::function<void()>& on_mounted) {
  fuse_lowlevel_ops ops = {};
  AddMetaOps(&ops);
  AddFileOps(&ops);
  AddDirOps(&ops);
  AddWriteOps(&ops);
  AddNamespaceOps(&ops);

  std::string opts = std::string(options.read_only ? "ro," : "") +
                     "default_permissions,fsname=" + options.fsname + ",subtype=s3rdmafs";
  if (options.allow_other) opts += ",allow_other";
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  fuse_opt_add_arg(&args, "s3rdmafs");
  fuse_opt_add_arg(&args, "-o");
  fuse_opt_add_arg(&args, opts.c_str());
  if (options.debug) fuse_opt_add_arg(&args, "-d");

  Session session{fs, {}};
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &session);
  fuse_opt_free_args(&args);
  if (!se) return MakeError(Errc::kInternal, "fuse_session_new failed (bad FUSE options?)");
  session.se = se;
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return MakeError(Errc::kInternal, "cannot install signal handlers");
  }
  if (fuse_session_mount(se, options.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return MakeError(Errc::kIo,
                     "cannot mount on '" + options.mountpoint +
                         "' (does it exist, is /dev/fuse usable, is it already mounted?)");
  }
  // Names the core drops on its own (a new file that was never saved) must
  // leave the kernel's dentry cache too. The core calls this from its timer
  // thread, never from a request; it stops working before the session goes.
  struct Notifier {
    std::mutex mu;
    fuse_session* se = nullptr;
  };
  auto notifier = std::make_shared<Notifier>();
  notifier->se = se;
  fs->SetNameDropped([notifier](uint64_t parent, const std::string& name) {
    std::lock_guard lock(notifier->mu);
    if (notifier->se)
      fuse_lowlevel_notify_inval_entry(notifier->se, parent, name.c_str(), name.size());
  });
  on_mounted();
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, options.max_threads);
  fuse_loop_cfg_set_clone_fd(cfg, 0);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  // Replies still owed by fetch completions must go out (or fail) before the
  // session they belong to is destroyed: the owner's shutdown returns once
  // none is owed.
  if (options.shutdown) options.shutdown();
  {
    std::lock_guard lock(notifier->mu);
    notifier->se = nullptr;
  }
  fs->SetNameDropped(nullptr);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  if (rc != 0 && rc != SIGINT && rc != SIGTERM && rc != SIGHUP)
    return MakeError(Errc::kIo,
                     std::string("FUSE loop ended with error: ") + ErrnoText(rc < 0 ? -rc : rc));
  return {};
}

}  // namespace s3rdmafs::fuse
