// s3rdmafs: mount an S3 bucket (or a prefix of one) as a filesystem.
//
//   s3rdmafs [options] BUCKET[:/PREFIX] MOUNTPOINT
//
// Without -f the process forks before any thread exists; the child builds
// everything, checks the endpoint and mounts, then tells the parent through a
// pipe whether it worked. So `s3rdmafs ...` returns only once the mount is live,
// or fails with the reason - it never leaves a half-started daemon behind.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

#include "kernel_readahead.h"
#include "reload.h"
#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/common/log.h"
#include "s3rdmafs/config/config.h"
#include "s3rdmafs/fuse/fuse_mount.h"
#include "s3rdmafs/metrics/metrics_server.h"
#include "startup.h"
#include "stats_writer.h"

using namespace s3rdmafs;

namespace {

struct Args {
  std::string config_file;
  std::vector<std::string> overrides;
  std::string source;
  std::string mountpoint;
  std::string log_file;
  bool foreground = false;
  bool debug = false;
  bool print_config = false;
  bool print_reference = false;
};

// "-o a=b,c=d" and repeated "-o" both work, as with mount(8).
std::vector<std::string> SplitOverrides(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  for (const std::string& r : raw) {
    size_t pos = 0;
    while (pos <= r.size()) {
      size_t comma = r.find(',', pos);
      std::string part =
          r.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (!part.empty()) out.push_back(part);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return out;
}

Result<config::Config> MakeConfig(const Args& a) {
  config::Config c;
  if (!a.config_file.empty()) {
    auto loaded = config::LoadFile(a.config_file);
    if (!loaded) return loaded;
    c = std::move(*loaded);
  }
  if (!a.source.empty()) {
    size_t colon = a.source.find(':');
    c.s3.bucket = a.source.substr(0, colon);
    if (colon != std::string::npos) c.s3.prefix = a.source.substr(colon + 1);
  }
  for (const std::string& o : SplitOverrides(a.overrides)) {
    auto r = config::ApplyOverride(&c, o);
    if (!r) return tl::unexpected(r.error());
  }
  if (a.debug) c.log.level = "debug";
  auto v = config::Validate(c);
  if (!v) return tl::unexpected(v.error());
  return c;
}

// The mount point must be a directory nobody has mounted on yet; each way it
// can be wrong gets its own message (a dead FUSE mount is the common one).
Result<void> CheckMountpoint(const std::string& path) {
  struct stat st, parent;
  struct statfs fs;
  // statfs always reaches a FUSE daemon (stat may be answered from the
  // kernel's attribute cache), so it is what notices a dead one.
  int err = statfs(path.c_str(), &fs) == 0 ? 0 : errno;
  if (err == 0 && stat(path.c_str(), &st) != 0) err = errno;
  if (err != 0) {
    if (err == ENOTCONN || err == ECONNABORTED)
      return MakeError(Errc::kConfig, "mount point '" + path +
                                          "' is a dead FUSE mount (its daemon died): run "
                                          "'fusermount3 -u " +
                                          path + "' first");
    if (err == ENOENT)
      return MakeError(Errc::kConfig, "mount point '" + path + "' does not exist (mkdir it)");
    return MakeError(Errc::kConfig, "mount point '" + path + "': " + ErrnoText(err));
  }
  if (!S_ISDIR(st.st_mode))
    return MakeError(Errc::kConfig, "mount point '" + path + "' is not a directory");
  if (stat((path + "/..").c_str(), &parent) == 0 &&
      (st.st_dev != parent.st_dev || st.st_ino == parent.st_ino) && path != "/")
    return MakeError(Errc::kConfig, "mount point '" + path +
                                        "' is busy: something is already mounted there "
                                        "(umount it, or pick another directory)");
  return {};
}

// Runs the mount in this process. `ready_fd` (or -1) receives "\0" once the
// mount is live, or the error text.
int Serve(const config::Config& c, const Args& a, int ready_fd) {
  auto report_failure = [&](const std::string& msg) {
    LOG_ERROR("%s", msg.c_str());
    if (ready_fd >= 0) {
      ssize_t ignored = write(ready_fd, msg.data(), msg.size());
      (void)ignored;
      close(ready_fd);
    }
    return 1;
  };
  daemon::BlockReloadSignal();  // before any thread: SIGHUP is the reloader's alone
  auto d = daemon::Build(c);
  if (!d) return report_failure(d.error().message);
  if (c.s3.startup_check) {
    auto ok = daemon::CheckEndpoint(c, (*d)->store.get());
    if (!ok) return report_failure(ok.error().message);
  }
  std::unique_ptr<metrics::MetricsServer> metrics;
  if (!c.metrics.listen.empty()) {
    const daemon::Daemon* dp = d->get();
    auto m = metrics::MetricsServer::Start(c.metrics.listen, [dp] { return RenderStats(*dp); });
    if (!m) return report_failure(m.error().message);
    metrics = std::move(*m);
    LOG_INFO("metrics at %s (GET /metrics)", metrics->where().c_str());
  }
  std::unique_ptr<daemon::StatsWriter> stats;
  if (!c.log.stats_file.empty())
    stats = std::make_unique<daemon::StatsWriter>(d->get(), c.log.stats_file);
  daemon::Reloader reloader([&a] { return MakeConfig(a); }, c, (*d)->fs.get());
  fuse::MountOptions mo;
  mo.mountpoint = a.mountpoint;
  mo.fsname = "s3rdmafs:" + c.s3.bucket +
              (c.s3.prefix.empty() ? "" : ":/" + daemon::NormalizePrefix(c.s3.prefix));
  mo.allow_other = c.fuse.allow_other;
  mo.debug = a.debug;
  mo.max_threads = static_cast<unsigned>(c.fuse.max_threads);
  mo.read_only = !c.write.enabled;
  mo.shutdown = [&] { (*d)->Shutdown(); };
  // Ready means the mount answers: a stat of the root goes through the FUSE
  // loop, which starts right after on_mounted. Then systemd (Type=notify)
  // and a waiting parent learn it; a stat that fails is a failed start.
  std::thread announce;
  auto r = fuse::MountAndServe((*d)->fs.get(), mo, [&] {
    announce = std::thread([&, ready_fd]() mutable {
      struct stat st;
      if (stat(a.mountpoint.c_str(), &st) != 0) {
        std::string msg = std::string("the new mount does not answer: ") + ErrnoText(errno);
        LOG_ERROR("%s", msg.c_str());
        if (ready_fd >= 0) {
          ssize_t ignored = write(ready_fd, msg.data(), msg.size());
          (void)ignored;
          close(ready_fd);
        }
        return;
      }
      if (c.fuse.read_ahead) {
        if (auto ra = daemon::SetKernelReadahead(st.st_dev, c.fuse.read_ahead); !ra)
          LOG_INFO("kernel read-ahead left at its default: %s", ra.error().message.c_str());
      }
      LOG_INFO("mounted %s at %s (endpoint %s)", mo.fsname.c_str(), a.mountpoint.c_str(),
               c.s3.endpoint.c_str());
      sd_notifyf(0, "READY=1\nSTATUS=serving %s at %s", mo.fsname.c_str(), a.mountpoint.c_str());
      if (ready_fd >= 0) {
        char ok = 0;
        ssize_t ignored = write(ready_fd, &ok, 1);
        (void)ignored;
        close(ready_fd);
      }
    });
    ready_fd = -1;  // the announcer owns it now
  });
  if (announce.joinable()) announce.join();
  sd_notify(0, "STOPPING=1");
  if (!r) return report_failure(r.error().message);
  LOG_INFO("unmounted %s", a.mountpoint.c_str());
  return 0;
}

}  // namespace

static int Main(int argc, char** argv) {
  Args a;
  CLI::App app{"s3rdmafs: mount an S3 bucket as a filesystem, with an RDMA-ready page cache"};
  app.add_option("source", a.source, "BUCKET or BUCKET:/PREFIX");
  app.add_option("mountpoint", a.mountpoint, "directory to mount on");
  app.add_option("-c,--config", a.config_file, "TOML configuration file");
  app.add_option("-o,--option", a.overrides,
                 "override a config key: section.key=value (comma-separated or repeated)")
      ->allow_extra_args(false);  // "-o k=v BUCKET DIR": the positionals are not values
  app.add_flag("-f,--foreground", a.foreground, "stay in the foreground (systemd, debugging)");
  app.add_flag("-d,--debug", a.debug, "debug logging and FUSE request tracing; implies -f");
  app.add_option("--log-file", a.log_file, "append logs here when running in the background");
  app.add_flag("--print-config", a.print_config,
               "print the effective configuration (secrets masked) and exit");
  app.add_flag("--print-config-reference", a.print_reference,
               "print s3rdmafs.toml(5), the reference of every key, as roff, and exit")
      ->group("");  // for the build, which renders the man page
  app.set_version_flag("--version", std::string("s3rdmafs ") + S3RDMAFS_VERSION);
  CLI11_PARSE(app, argc, argv);
  if (a.print_reference) {
    fputs(config::ConfigReferenceManPage(S3RDMAFS_VERSION).c_str(), stdout);
    return 0;
  }
  if (a.debug) a.foreground = true;

  auto c = MakeConfig(a);
  if (!c) {
    fprintf(stderr, "s3rdmafs: %s\n", c.error().message.c_str());
    return 2;
  }
  if (a.print_config) {
    fputs(config::Print(*c).c_str(), stdout);
    return 0;
  }
  if (a.mountpoint.empty()) {
    fprintf(
        stderr,
        "s3rdmafs: no mount point given\nusage: s3rdmafs [options] BUCKET[:/PREFIX] MOUNTPOINT\n");
    return 2;
  }
  if (auto m = CheckMountpoint(a.mountpoint); !m) {
    fprintf(stderr, "s3rdmafs: %s\n", m.error().message.c_str());
    return 2;
  }
  // The daemon leaves the caller's directory (chdir /): a relative mount
  // point would land under / instead of where the caller meant.
  if (char* absolute = realpath(a.mountpoint.c_str(), nullptr)) {
    a.mountpoint = absolute;
    free(absolute);
  }
  LogLevel level;
  ParseLogLevel(c->log.level, &level);
  SetLogLevel(level);

  if (a.foreground) return Serve(*c, a, -1);

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    perror("s3rdmafs: pipe");
    return 1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("s3rdmafs: fork");
    return 1;
  }
  if (pid == 0) {  // the daemon
    close(pipefd[0]);
    setsid();
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, STDIN_FILENO);
    dup2(devnull, STDOUT_FILENO);
    int logfd = a.log_file.empty() ? devnull
                                   : open(a.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    dup2(logfd >= 0 ? logfd : devnull, STDERR_FILENO);
    if (chdir("/") != 0) return 1;
    _exit(Serve(*c, a, pipefd[1]));
  }
  close(pipefd[1]);
  std::string msg;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) {
    msg.append(buf, n);
    if (msg[0] == '\0') break;
  }
  if (!msg.empty() && msg[0] == '\0') return 0;
  if (msg.empty()) {
    int status = 0;
    waitpid(pid, &status, 0);
    msg = "the daemon exited during start-up (status " + std::to_string(status) + ")";
  }
  fprintf(stderr, "s3rdmafs: %s\n", msg.c_str());
  return 1;
}

// Whatever is thrown past Main would abort (exit 134, no message): say what
// it was instead.
int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    fprintf(stderr, "s3rdmafs: %s\n", e.what());
  } catch (...) {
    fprintf(stderr, "s3rdmafs: unexpected error\n");
  }
  return 1;
}
