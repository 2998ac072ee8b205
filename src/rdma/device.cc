#include "s3rdmafs/rdma/device.h"

#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "s3rdmafs/common/errno_text.h"

namespace s3rdmafs::rdma {
namespace {

const char* PortState(ibv_port_state s) {
  switch (s) {
    case IBV_PORT_ACTIVE:
      return "ACTIVE";
    case IBV_PORT_DOWN:
      return "DOWN";
    case IBV_PORT_INIT:
      return "INIT";
    case IBV_PORT_ARMED:
      return "ARMED";
    default:
      return "OTHER";
  }
}

std::string ReadSysfs(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  std::getline(in, v);
  return v;
}

}  // namespace

namespace {

// Being mlx5 says nothing about DC (ConnectX-3 is mlx4, and a VF or a
// firmware may leave DC out): the proof short of traffic is creating a DC
// target, as DcTarget does, and throwing it away.
bool CanCreateDct(ibv_context* ctx) {
  ibv_pd* pd = ibv_alloc_pd(ctx);
  ibv_cq* cq = pd ? ibv_create_cq(ctx, 1, nullptr, nullptr, 0) : nullptr;
  ibv_srq_init_attr srq_attr{};
  srq_attr.attr.max_wr = 1;
  srq_attr.attr.max_sge = 1;
  ibv_srq* srq = cq ? ibv_create_srq(pd, &srq_attr) : nullptr;
  ibv_qp* qp = nullptr;
  if (srq) {
    ibv_qp_init_attr_ex attr{};
    attr.qp_type = IBV_QPT_DRIVER;
    attr.send_cq = attr.recv_cq = cq;
    attr.srq = srq;
    attr.comp_mask = IBV_QP_INIT_ATTR_PD;
    attr.pd = pd;
    mlx5dv_qp_init_attr dv{};
    dv.comp_mask = MLX5DV_QP_INIT_ATTR_MASK_DC;
    dv.dc_init_attr.dc_type = MLX5DV_DCTYPE_DCT;
    dv.dc_init_attr.dct_access_key = 1;
    qp = mlx5dv_create_qp(ctx, &attr, &dv);
  }
  const bool made = qp != nullptr;
  if (qp) ibv_destroy_qp(qp);
  if (srq) ibv_destroy_srq(srq);
  if (cq) ibv_destroy_cq(cq);
  if (pd) ibv_dealloc_pd(pd);
  return made;
}

}  // namespace

Result<std::vector<DeviceInfo>> ListDevices() {
  std::vector<DeviceInfo> out;
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (!list) {
    if (errno == ENOSYS || errno == ENOENT) return out;  // no RDMA support in this kernel
    return MakeError(Errc::kIo, std::string("ibv_get_device_list: ") + ErrnoText(errno));
  }
  for (int i = 0; i < n; ++i) {
    DeviceInfo d;
    d.name = ibv_get_device_name(list[i]);
    char guid[32];
    snprintf(guid, sizeof guid, "%016llx",
             static_cast<unsigned long long>(be64toh(ibv_get_device_guid(list[i]))));
    d.node_guid = guid;
    d.dc_supported = false;
    if (mlx5dv_is_supported(list[i])) {
      ibv_context* ctx = ibv_open_device(list[i]);
      if (ctx) {
        d.dc_supported = CanCreateDct(ctx);
        ibv_close_device(ctx);
      }
    }
    ibv_context* ctx = ibv_open_device(list[i]);
    if (ctx) {
      ibv_device_attr da;
      if (ibv_query_device(ctx, &da) == 0) {
        for (int p = 1; p <= da.phys_port_cnt; ++p) {
          ibv_port_attr pa;
          if (ibv_query_port(ctx, p, &pa) != 0) continue;
          PortInfo pi;
          pi.port = p;
          pi.state = PortState(pa.state);
          pi.link_layer = pa.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet" : "InfiniBand";
          pi.active_mtu = 128 << pa.active_mtu;
          pi.lid = pa.lid;
          for (int g = 0; g < pa.gid_tbl_len && g < 256; ++g) {
            std::string base = "/sys/class/infiniband/" + d.name + "/ports/" + std::to_string(p);
            std::string gid = ReadSysfs(base + "/gids/" + std::to_string(g));
            if (gid.empty() || gid == "0000:0000:0000:0000:0000:0000:0000:0000") continue;
            std::string type = ReadSysfs(base + "/gid_attrs/types/" + std::to_string(g));
            pi.gids.push_back({g, gid, type.empty() ? "IB" : type});
          }
          d.ports.push_back(std::move(pi));
        }
      }
      ibv_close_device(ctx);
    }
    out.push_back(std::move(d));
  }
  ibv_free_device_list(list);
  return out;
}

Result<std::unique_ptr<Device>> Device::Open(const std::string& name) {
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (!list || n == 0) {
    if (list) ibv_free_device_list(list);
    return MakeError(Errc::kNotFound, "no RDMA device found (is rdma_rxe or a NIC driver loaded?)");
  }
  ibv_device* chosen = nullptr;
  for (int i = 0; i < n && !chosen; ++i)
    if (name.empty() || name == ibv_get_device_name(list[i])) chosen = list[i];
  if (!chosen) {
    ibv_free_device_list(list);
    return MakeError(Errc::kNotFound, "RDMA device '" + name + "' not found");
  }
  std::unique_ptr<Device> d(new Device());
  d->name_ = ibv_get_device_name(chosen);
  d->ctx_ = ibv_open_device(chosen);
  ibv_free_device_list(list);
  if (!d->ctx_)
    return MakeError(Errc::kIo, "cannot open RDMA device " + d->name_ + ": " + ErrnoText(errno));
  d->pd_ = ibv_alloc_pd(d->ctx_);
  if (!d->pd_) return MakeError(Errc::kIo, "cannot allocate a protection domain on " + d->name_);
  return d;
}

Device::~Device() {
  if (pd_) ibv_dealloc_pd(pd_);
  if (ctx_) ibv_close_device(ctx_);
}

Result<std::unique_ptr<Registration>> Registration::Register(Device& device, void* addr,
                                                             uint64_t length) {
  std::unique_ptr<Registration> r(new Registration());
  r->mr_ = ibv_reg_mr(device.pd(), addr, length,
                      IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
  if (!r->mr_) {
    int err = errno;
    std::string msg = "cannot register " + std::to_string(length >> 20) + " MiB on " +
                      device.name() + ": " + ErrnoText(err);
    if (err == ENOMEM || err == EPERM || err == EAGAIN) msg += "; " + MemlockAdvice(length);
    return MakeError(Errc::kNoSpace, msg);
  }
  r->addr_ = addr;
  r->length_ = length;
  return r;
}

Registration::~Registration() {
  if (mr_) ibv_dereg_mr(mr_);
}
uint32_t Registration::lkey() const { return mr_->lkey; }
uint32_t Registration::rkey() const { return mr_->rkey; }

std::string MemlockAdvice(uint64_t bytes) {
  rlimit rl{};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  auto text = [](rlim_t v) {
    return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v >> 10) + " KiB";
  };
  return "RLIMIT_MEMLOCK is " + text(rl.rlim_cur) + " (hard " + text(rl.rlim_max) +
         "), pinning needs " + std::to_string((bytes + 1023) >> 10) +
         " KiB: raise it (systemd LimitMEMLOCK=infinity, "
         "'ulimit -l unlimited', or memlock in /etc/security/limits.conf)";
}

Result<int> Device::RoceV2Ipv4Gid(int port) const {
  ibv_port_attr pa;
  if (ibv_query_port(ctx_, static_cast<uint8_t>(port), &pa) != 0)
    return MakeError(Errc::kIo, name_ + " port " + std::to_string(port) +
                                    ": ibv_query_port: " + ErrnoText(errno));
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  for (int i = 0; i < pa.gid_tbl_len; ++i) {
    ibv_gid_entry e{};
    if (ibv_query_gid_ex(ctx_, static_cast<uint32_t>(port), static_cast<uint32_t>(i), &e, 0) != 0)
      continue;  // an empty slot
    if (e.gid_type == IBV_GID_TYPE_ROCE_V2 && memcmp(e.gid.raw, kMapped, 12) == 0) return i;
  }
  return MakeError(Errc::kNotFound, name_ + " port " + std::to_string(port) +
                                        " has no RoCE v2 IPv4 GID (an IP on its netdev?)");
}

}  // namespace s3rdmafs::rdma
