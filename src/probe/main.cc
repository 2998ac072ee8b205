// s3rdmafs-probe: what RDMA can do on this machine.
//   s3rdmafs-probe devices                  devices, ports, GIDs, link layer, DC support, memlock
//   s3rdmafs-probe register [--size 64M]    register an arena of that size on every device
// Exit status: 0 when every step asked for worked, 1 otherwise, 2 on usage errors.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "s3rdmafs/common/size_parse.h"
#include "s3rdmafs/mem/arena.h"
#include "s3rdmafs/rdma/device.h"

using namespace s3rdmafs;

namespace {

int Devices() {
  auto devices = rdma::ListDevices();
  if (!devices) {
    printf("devices: FAIL %s\n", devices.error().message.c_str());
    return 1;
  }
  rlimit rl{};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY)
    printf("memlock: unlimited\n");
  else
    printf("memlock: %llu KiB\n", static_cast<unsigned long long>(rl.rlim_cur >> 10));
  if (devices->empty()) {
    printf("devices: none (no RDMA device in this kernel; s3rdmafs will use HTTP)\n");
    return 0;
  }
  for (auto& d : *devices) {
    printf("device %s guid %s dc %s\n", d.name.c_str(), d.node_guid.c_str(),
           d.dc_supported ? "supported (mlx5; untested on hardware by this project)"
                          : "not supported (RC only)");
    for (auto& p : d.ports) {
      printf("  port %d %s link %s mtu %d lid %u\n", p.port, p.state.c_str(), p.link_layer.c_str(),
             p.active_mtu, p.lid);
      for (auto& g : p.gids) printf("    gid[%d] %s %s\n", g.index, g.gid.c_str(), g.type.c_str());
    }
  }
  return 0;
}

int RegisterArena(const std::string& size_text) {
  auto size = ParseSize(size_text);
  if (!size) {
    fprintf(stderr, "s3rdmafs-probe: %s\n", size.error().message.c_str());
    return 2;
  }
  auto devices = rdma::ListDevices();
  if (!devices || devices->empty()) {
    printf("register: FAIL no RDMA device\n");
    return 1;
  }
  auto arena = mem::Arena::Create(*size, true, false);
  if (!arena) {
    printf("register: FAIL %s\n", arena.error().message.c_str());
    return 1;
  }
  int rc = 0;
  for (auto& d : *devices) {
    auto dev = rdma::Device::Open(d.name);
    if (!dev) {
      printf("register %s: FAIL %s\n", d.name.c_str(), dev.error().message.c_str());
      rc = 1;
      continue;
    }
    auto reg = rdma::Registration::Register(**dev, (*arena)->base(), (*arena)->size());
    if (!reg) {
      printf("register %s: FAIL %s\n", d.name.c_str(), reg.error().message.c_str());
      rc = 1;
      continue;
    }
    printf("register %s: OK %llu MiB (%s pages) rkey 0x%08x\n", d.name.c_str(),
           static_cast<unsigned long long>(*size >> 20), (*arena)->backing(), (*reg)->rkey());
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"s3rdmafs-probe: RDMA devices and capabilities for s3rdmafs"};
  app.require_subcommand(1);
  app.add_subcommand("devices", "list RDMA devices, ports, GIDs, DC support and the memlock limit");
  std::string size = "64M";
  auto* reg =
      app.add_subcommand("register", "register an arena on every device, as the daemon will");
  reg->add_option("--size", size, "arena size (default 64M)");
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("devices")) return Devices();
  return RegisterArena(size);
}
