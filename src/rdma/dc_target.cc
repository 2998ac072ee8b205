#include "s3rdmafs/rdma/dc_target.h"

#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>

#include <cerrno>
#include <cstring>

#include "s3rdmafs/common/errno_text.h"

namespace s3rdmafs::rdma {
Result<std::unique_ptr<DcTarget>> DcTarget::Create(const DcOptions& o, void* region,
                                                   uint64_t size) {
  std::unique_ptr<DcTarget> t(new DcTarget());
  auto dev = Device::Open(o.device);
  if (!dev) return tl::unexpected(dev.error());
  t->device_ = std::move(*dev);
  ibv_context* ctx = t->device_->context();
  if (!mlx5dv_is_supported(ctx->device))
    return MakeError(Errc::kInvalidArgument,
                     "device " + t->device_->name() + " is not mlx5: no DC transport");
  auto reg = Registration::Register(*t->device_, region, size);
  if (!reg) return tl::unexpected(reg.error());
  t->registration_ = std::move(*reg);

  ibv_port_attr pa;
  if (ibv_query_port(ctx, o.port, &pa) != 0)
    return MakeError(Errc::kIo, "ibv_query_port: " + std::string(ErrnoText(errno)));
  int gid_index = o.gid_index;
  if (gid_index < 0) {
    auto found = t->device_->RoceV2Ipv4Gid(o.port);
    if (!found) return tl::unexpected(found.error());
    gid_index = *found;
  }
  ibv_gid gid;
  if (ibv_query_gid(ctx, o.port, gid_index, &gid) != 0)
    return MakeError(Errc::kIo, "ibv_query_gid failed");

  t->cq_ = ibv_create_cq(ctx, 16, nullptr, nullptr, 0);
  ibv_srq_init_attr srq_attr{};
  srq_attr.attr.max_wr = 1;
  srq_attr.attr.max_sge = 1;
  t->srq_ = t->cq_ ? ibv_create_srq(t->device_->pd(), &srq_attr) : nullptr;
  if (!t->srq_)
    return MakeError(Errc::kIo,
                     "cannot create the DC target's CQ/SRQ: " + std::string(ErrnoText(errno)));

  ibv_qp_init_attr_ex attr{};
  attr.qp_type = IBV_QPT_DRIVER;
  attr.send_cq = t->cq_;
  attr.recv_cq = t->cq_;
  attr.srq = t->srq_;
  attr.comp_mask = IBV_QP_INIT_ATTR_PD;
  attr.pd = t->device_->pd();
  mlx5dv_qp_init_attr dv{};
  dv.comp_mask = MLX5DV_QP_INIT_ATTR_MASK_DC;
  dv.dc_init_attr.dc_type = MLX5DV_DCTYPE_DCT;
  dv.dc_init_attr.dct_access_key = o.access_key;
  t->qp_ = mlx5dv_create_qp(ctx, &attr, &dv);
  if (!t->qp_)
    return MakeError(Errc::kIo, "mlx5dv_create_qp (DCT): " + std::string(ErrnoText(errno)));

  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_INIT;
  a.pkey_index = 0;
  a.port_num = static_cast<uint8_t>(o.port);
  a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
  if (ibv_modify_qp(t->qp_, &a,
                    IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) != 0)
    return MakeError(Errc::kIo, "DCT to INIT: " + std::string(ErrnoText(errno)));
  a = {};
  a.qp_state = IBV_QPS_RTR;
  a.path_mtu = pa.active_mtu;  // DC does not negotiate the MTU: both ends must match
  a.min_rnr_timer = 12;
  a.ah_attr.port_num = static_cast<uint8_t>(o.port);
  a.ah_attr.is_global = 1;
  a.ah_attr.grh.hop_limit = 64;  // RoCE v2 is routed: 1 would stop at the first router
  a.ah_attr.grh.sgid_index = static_cast<uint8_t>(gid_index);
  if (ibv_modify_qp(t->qp_, &a,
                    IBV_QP_STATE | IBV_QP_MIN_RNR_TIMER | IBV_QP_AV | IBV_QP_PATH_MTU) != 0)
    return MakeError(Errc::kIo, "DCT to RTR: " + std::string(ErrnoText(errno)));

  t->prototype_.rkey = t->registration_->rkey();
  t->prototype_.lid = pa.lid;
  t->prototype_.dctn = t->qp_->qp_num & 0xffffff;
  t->prototype_.gid_present = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
  memcpy(t->prototype_.gid.data(), gid.raw, 16);
  t->prototype_.suffixed = o.suffixed_tokens;
  t->base_ = reinterpret_cast<uintptr_t>(region);
  t->size_ = size;
  return t;
}

DcTarget::~DcTarget() {
  if (qp_) ibv_destroy_qp(qp_);
  if (srq_) ibv_destroy_srq(srq_);
  if (cq_) ibv_destroy_cq(cq_);
  registration_.reset();
}

Result<Window> DcTarget::Open(const void* addr, uint64_t size, Access /*access*/) {
  if (retired_.load()) return MakeError(Errc::kConnection, "DC target retired");
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  if (a < base_ || a + size > base_ + size_ || size == 0 || size > 0xffffffffu)
    return MakeError(Errc::kInvalidArgument, "window outside the registered region");
  DcToken t = prototype_;
  t.addr = a;
  t.size = size;
  return Window{FormatToken(t), 0};
}

void DcTarget::Retire() {
  std::lock_guard lock(retire_mu_);
  if (retired_.exchange(true)) return;
  registration_.reset();  // the rkey dies with the registration
}

std::string DcTarget::Describe() const {
  return "DC target dctn " + std::to_string(prototype_.dctn) + " on " + device_->name() +
         " (untested on hardware)";
}

}  // namespace s3rdmafs::rdma
