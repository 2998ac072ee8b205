// The client side of the DC (Dynamically Connected, mlx5 only) form that the
// commercial RDMA-S3 servers speak: one DC Target QP (with an SRQ and a CQ)
// per port, moved to RTR, and the cache arena registered on the same PD. The
// server addresses each RDMA operation by (address handle from our GID/LID,
// DCT number, DC access key); there is no per-connection set-up.
//
// UNTESTED ON HARDWARE: nothing this project runs on has a DC-capable NIC
// (Soft-RoCE has no DC). The code is compiled in every build, the token
// format is unit-tested, and `s3rdmafs-probe devices` reports DC support.
// Thread-safety: immutable after Create, except Retire (idempotent).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "s3rdmafs/protocol/token.h"
#include "s3rdmafs/rdma/device.h"
#include "s3rdmafs/rdma/token_source.h"

struct ibv_qp;
struct ibv_srq;
struct ibv_cq;

namespace s3rdmafs::rdma {

struct DcOptions {
  std::string device;  // "" = first device
  int port = 1;
  int gid_index = -1;                   // -1: the first RoCE v2 IPv4-mapped GID
  uint64_t access_key = 0xffeeddccull;  // shared configuration, never in the token
  bool suffixed_tokens = false;         // older servers want the 9-field form
};

class DcTarget final : public TokenSource {
 public:
  static Result<std::unique_ptr<DcTarget>> Create(const DcOptions& options, void* region,
                                                  uint64_t size);
  ~DcTarget() override;

  // The region's own key (DC carries no per-request windows here): Close
  // cannot fence one window, so a request without a reply retires the target.
  Result<Window> Open(const void* addr, uint64_t size, Access access) override;
  bool Close(const Window& /*window*/) override { return false; }
  void Retire() override;
  bool retired() const override { return retired_.load(); }
  std::string Describe() const override;

 private:
  DcTarget() = default;
  std::unique_ptr<Device> device_;
  std::unique_ptr<Registration> registration_;
  ibv_cq* cq_ = nullptr;
  ibv_srq* srq_ = nullptr;
  ibv_qp* qp_ = nullptr;
  DcToken prototype_;  // lid, dctn, gid, rkey filled in; window per request
  uintptr_t base_ = 0;
  uint64_t size_ = 0;
  std::mutex retire_mu_;
  std::atomic<bool> retired_{false};
};

}  // namespace s3rdmafs::rdma
