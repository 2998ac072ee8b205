// The kernel's floor for a direct_io read reply fed from a TCP socket, by
// two paths, with nothing of s3rdmafs in between (bench/reply_path_bench.sh):
//
//   copy    readv from the socket into a 1 GiB arena (cold pages, as cache
//           blocks are), then fuse_reply_iov: today's direct receive path,
//           two copies and a page pin per 4 KiB of reply.
//   splice  splice(socket -> pipe), then fuse_reply_data from the pipe:
//           the reply is the one copy, from the socket's own pages.
//
// One file, "f", endless; a child process streams it over loopback TCP.
// Usage: reply_path_floor copy|splice MOUNTPOINT  (foreground; unmount ends it)
#define FUSE_USE_VERSION 34
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kArena = size_t{1} << 30;
constexpr int kPipeBytes = 4 << 20;  // a 1 MiB reply in socket-sized pieces, and room

struct State {
  bool splice = false;
  int sock = -1;
  int pipe_rd = -1, pipe_wr = -1;
  char* arena = nullptr;
  size_t arena_pos = 0;
} g;

void Init(void*, fuse_conn_info* conn) {
  if (g.splice)
    conn->want |= FUSE_CAP_SPLICE_WRITE;
  else
    conn->want &= ~FUSE_CAP_SPLICE_WRITE;
}

void Lookup(fuse_req_t req, fuse_ino_t, const char* name) {
  if (std::strcmp(name, "f") != 0) return (void)fuse_reply_err(req, ENOENT);
  fuse_entry_param e{};
  e.ino = 2;
  e.attr.st_ino = 2;
  e.attr.st_mode = S_IFREG | 0444;
  e.attr.st_size = off_t{1} << 40;
  e.attr_timeout = e.entry_timeout = 3600;
  fuse_reply_entry(req, &e);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st {};
  st.st_ino = ino;
  st.st_mode = ino == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0444);
  st.st_size = off_t{1} << 40;
  fuse_reply_attr(req, &st, 3600);
}

void Open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fi->direct_io = 1;
  fuse_reply_open(req, fi);
}

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t, fuse_file_info*) {
  size_t have = 0;
  if (!g.splice) {
    if (g.arena_pos + size > kArena) g.arena_pos = 0;
    char* at = g.arena + g.arena_pos;
    while (have < size) {
      const ssize_t n = read(g.sock, at + have, size - have);
      if (n <= 0) return (void)fuse_reply_err(req, EIO);
      have += static_cast<size_t>(n);
    }
    g.arena_pos += size;
    iovec iov{at, size};
    fuse_reply_iov(req, &iov, 1);
    return;
  }
  while (have < size) {
    const ssize_t n = splice(g.sock, nullptr, g.pipe_wr, nullptr, size - have, SPLICE_F_MOVE);
    if (n <= 0) return (void)fuse_reply_err(req, EIO);
    have += static_cast<size_t>(n);
  }
  fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
  bv.buf[0].flags = FUSE_BUF_IS_FD;
  bv.buf[0].fd = g.pipe_rd;
  fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "reply_path_floor: %s: %s\n", what.c_str(), std::strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "copy") != 0 && std::strcmp(argv[1], "splice") != 0)) {
    std::fprintf(stderr, "usage: %s copy|splice MOUNTPOINT\n", argv[0]);
    return 2;
  }
  g.splice = std::strcmp(argv[1], "splice") == 0;

  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(listener, 1) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len))
    return Fail("listen on loopback");
  if (fork() == 0) {  // the "server": 1 MiB sends for as long as the reader reads
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, reinterpret_cast<sockaddr*>(&addr), len) != 0) _exit(1);
    std::vector<char> chunk(size_t{1} << 20, 'x');
    while (send(s, chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
    }
    _exit(0);
  }
  g.sock = accept(listener, nullptr, nullptr);
  if (g.sock < 0) return Fail("accept");

  if (g.splice) {
    int fds[2];
    if (pipe(fds) != 0) return Fail("pipe");
    g.pipe_rd = fds[0];
    g.pipe_wr = fds[1];
    if (fcntl(g.pipe_wr, F_SETPIPE_SZ, kPipeBytes) < 0)
      return Fail("a 4 MiB pipe (raise fs.pipe-max-size, or run with CAP_SYS_RESOURCE)");
  } else {
    void* p = mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Fail("mmap");
    madvise(p, kArena, MADV_HUGEPAGE);  // as the cache arena
    std::memset(p, 0, kArena);          // prefaulted, as the cache arena
    g.arena = static_cast<char*>(p);
  }

  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.getattr = GetAttr;
  ops.open = Open;
  ops.read = Read;
  char* args_v[] = {argv[0]};
  fuse_args args = FUSE_ARGS_INIT(1, args_v);
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (se == nullptr || fuse_session_mount(se, argv[2]) != 0) return Fail("mount");
  const int rc = fuse_session_loop(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  close(g.sock);
  return rc == 0 ? 0 : 1;
}
