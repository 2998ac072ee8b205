// RDMA devices: discovery (for the probe tool and start-up logs), opening a
// device with one protection domain, and registering memory (the cache arena)
// with the access the RDMA-S3 protocol needs: the server RDMA-WRITEs GET data
// into it and RDMA-READs PUT data from it.
// Thread-safety: DeviceInfo is plain data; Device and Registration are owned
// by one thread at set-up and read-only afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "s3rdmafs/common/result.h"

struct ibv_context;
struct ibv_pd;
struct ibv_mr;

namespace s3rdmafs::rdma {

struct GidInfo {
  int index = 0;
  std::string gid;   // "fe80:0000:..." as the kernel prints it
  std::string type;  // "RoCE v2", "RoCE v1", "IB"
};

struct PortInfo {
  int port = 0;
  std::string state;       // "ACTIVE", "DOWN", ...
  std::string link_layer;  // "Ethernet" (RoCE) or "InfiniBand"
  int active_mtu = 0;      // bytes
  uint16_t lid = 0;
  std::vector<GidInfo> gids;
};

struct DeviceInfo {
  std::string name;
  std::string node_guid;
  bool dc_supported = false;  // the device created a DC target (mlx5 with DC enabled)
  std::vector<PortInfo> ports;
};

// Every RDMA device the kernel exposes; empty (not an error) when there is none.
Result<std::vector<DeviceInfo>> ListDevices();

class Device {
 public:
  // Opens `name` ("" = the first device) and allocates a protection domain.
  static Result<std::unique_ptr<Device>> Open(const std::string& name);
  ~Device();
  ibv_context* context() const { return ctx_; }
  ibv_pd* pd() const { return pd_; }
  const std::string& name() const { return name_; }
  // The index of `port`'s first GID that is RoCE v2 (by its type, not its
  // look: on mlx5 each IPv4-mapped address appears once as RoCE v1, first,
  // and once as v2) and IPv4-mapped (::ffff:a.b.c.d). kNotFound names the port.
  Result<int> RoceV2Ipv4Gid(int port) const;

 private:
  Device() = default;
  ibv_context* ctx_ = nullptr;
  ibv_pd* pd_ = nullptr;
  std::string name_;
};

// One ibv_mr over caller memory, deregistered on destruction.
class Registration {
 public:
  static Result<std::unique_ptr<Registration>> Register(Device& device, void* addr,
                                                        uint64_t length);
  ~Registration();
  uint32_t lkey() const;
  uint32_t rkey() const;
  void* addr() const { return addr_; }
  uint64_t length() const { return length_; }

 private:
  Registration() = default;
  ibv_mr* mr_ = nullptr;
  void* addr_ = nullptr;
  uint64_t length_ = 0;
};

// What to tell an operator when pinning `bytes` fails: the current
// RLIMIT_MEMLOCK and how to raise it.
std::string MemlockAdvice(uint64_t bytes);

}  // namespace s3rdmafs::rdma
