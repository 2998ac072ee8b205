#include "s3rdmafs/rdma/rc_connection.h"

#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/rdma/device.h"

namespace s3rdmafs::rdma {
namespace {

// Waits for the next CM event and checks it is `expected`.
Result<void> Expect(rdma_event_channel* ch, rdma_cm_event_type expected, int timeout_ms,
                    const char* what) {
  pollfd p{ch->fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0)
    return MakeError(Errc::kTimedOut, std::string(what) + ": timed out");
  rdma_cm_event* ev = nullptr;
  if (rdma_get_cm_event(ch, &ev) != 0)
    return MakeError(Errc::kConnection, std::string(what) + ": " + ErrnoText(errno));
  rdma_cm_event_type got = ev->event;
  int status = ev->status;
  rdma_ack_cm_event(ev);
  if (got != expected)
    return MakeError(got == RDMA_CM_EVENT_REJECTED ? Errc::kAccessDenied : Errc::kConnection,
                     std::string(what) + ": " + rdma_event_str(got) + " (status " +
                         std::to_string(status) + ")");
  return {};
}

}  // namespace

Result<std::unique_ptr<RcConnection>> RcConnection::Connect(const std::string& host, uint16_t port,
                                                            void* region, uint64_t region_size,
                                                            const HandshakeFn& handshake,
                                                            int timeout_ms) {
  std::unique_ptr<RcConnection> c(new RcConnection());
  std::string where = host + ":" + std::to_string(port);
  c->channel_ = rdma_create_event_channel();
  if (!c->channel_)
    return MakeError(Errc::kIo, "rdma_create_event_channel: " + std::string(ErrnoText(errno)));
  if (rdma_create_id(c->channel_, &c->id_, nullptr, RDMA_PS_TCP) != 0)
    return MakeError(Errc::kIo, "rdma_create_id: " + std::string(ErrnoText(errno)));
  addrinfo hints{}, *ai = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &ai) != 0 || !ai)
    return MakeError(Errc::kConfig, "cannot resolve RDMA endpoint " + where);
  int rc = rdma_resolve_addr(c->id_, nullptr, ai->ai_addr, timeout_ms);
  freeaddrinfo(ai);
  if (rc != 0)
    return MakeError(Errc::kConnection, "rdma_resolve_addr " + where + ": " + ErrnoText(errno));
  if (auto r = Expect(c->channel_, RDMA_CM_EVENT_ADDR_RESOLVED, timeout_ms, "resolve address"); !r)
    return tl::unexpected(r.error());
  if (rdma_resolve_route(c->id_, timeout_ms) != 0)
    return MakeError(Errc::kConnection, "rdma_resolve_route " + where + ": " + ErrnoText(errno));
  if (auto r = Expect(c->channel_, RDMA_CM_EVENT_ROUTE_RESOLVED, timeout_ms, "resolve route"); !r)
    return tl::unexpected(r.error());

  c->pd_ = ibv_alloc_pd(c->id_->verbs);
  if (!c->pd_) return MakeError(Errc::kIo, "ibv_alloc_pd: " + std::string(ErrnoText(errno)));
  c->mr_ = ibv_reg_mr(c->pd_, region, region_size,
                      IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
  if (!c->mr_)
    return MakeError(Errc::kNoSpace,
                     "cannot register the cache arena: " + std::string(ErrnoText(errno)));
  c->base_ = reinterpret_cast<uintptr_t>(region);
  c->size_ = region_size;
  c->cq_ = ibv_create_cq(c->id_->verbs, 4, nullptr, nullptr, 0);
  if (!c->cq_) return MakeError(Errc::kIo, "ibv_create_cq: " + std::string(ErrnoText(errno)));
  ibv_qp_init_attr qa{};
  qa.send_cq = qa.recv_cq = c->cq_;
  qa.qp_type = IBV_QPT_RC;
  qa.cap.max_send_wr = qa.cap.max_recv_wr = 1;
  qa.cap.max_send_sge = qa.cap.max_recv_sge = 1;
  if (rdma_create_qp(c->id_, c->pd_, &qa) != 0)
    return MakeError(Errc::kIo, "rdma_create_qp: " + std::string(ErrnoText(errno)));

  c->rkey_ = c->mr_->rkey;
  auto hs = handshake(HandshakeRequestBody(c->base_, c->size_, c->rkey_));
  if (!hs) return tl::unexpected(hs.error());
  c->connection_ = hs->connection;
  uint8_t priv[kPrivateDataSize];
  EncodePrivateData(*hs, priv);
  rdma_conn_param param{};
  param.private_data = priv;
  param.private_data_len = kPrivateDataSize;
  // The server reads PUT data from us: it needs our responder resources.
  param.responder_resources = 16;
  param.initiator_depth = 16;
  param.retry_count = 7;
  param.rnr_retry_count = 7;
  if (rdma_connect(c->id_, &param) != 0)
    return MakeError(Errc::kConnection, "rdma_connect " + where + ": " + ErrnoText(errno));
  if (auto r = Expect(c->channel_, RDMA_CM_EVENT_ESTABLISHED, timeout_ms, "connect"); !r)
    return tl::unexpected(r.error());
  return c;
}

RcConnection::~RcConnection() {
  if (id_ && id_->qp && !retired_) rdma_disconnect(id_);
  if (id_ && id_->qp) rdma_destroy_qp(id_);
  if (cq_) ibv_destroy_cq(cq_);
  if (mr_) ibv_dereg_mr(mr_);
  if (pd_) ibv_dealloc_pd(pd_);
  if (id_) rdma_destroy_id(id_);
  if (channel_) rdma_destroy_event_channel(channel_);
}

void RcConnection::Retire() {
  std::lock_guard lock(retire_mu_);
  if (retired_.exchange(true)) return;
  if (id_ && id_->qp) rdma_disconnect(id_);
  if (mr_) ibv_dereg_mr(mr_);
  mr_ = nullptr;
}

bool RcConnection::Healthy() {
  std::lock_guard lock(retire_mu_);
  if (retired_ || disconnected_) return false;
  pollfd p{channel_->fd, POLLIN, 0};
  while (poll(&p, 1, 0) > 0) {
    rdma_cm_event* ev = nullptr;
    if (rdma_get_cm_event(channel_, &ev) != 0) break;
    rdma_cm_event_type got = ev->event;
    rdma_ack_cm_event(ev);
    if (got == RDMA_CM_EVENT_DISCONNECTED || got == RDMA_CM_EVENT_DEVICE_REMOVAL ||
        got == RDMA_CM_EVENT_TIMEWAIT_EXIT || got == RDMA_CM_EVENT_ADDR_CHANGE) {
      disconnected_ = true;
      break;
    }
  }
  return !disconnected_;
}

Result<std::string> RcConnection::TokenFor(const void* addr, uint64_t size) const {
  auto t = Token(addr, size);
  if (!t) return tl::unexpected(t.error());
  return FormatToken(*t);
}

std::string RcConnection::Describe() const {
  char buf[64];
  snprintf(buf, sizeof buf, "RC connection %016llx", static_cast<unsigned long long>(connection_));
  return std::string(buf) + " on " + device();
}

uint32_t RcConnection::rkey() const { return rkey_; }
std::string RcConnection::device() const { return ibv_get_device_name(id_->verbs->device); }

Result<RcToken> RcConnection::Token(const void* addr, uint64_t size) const {
  if (retired_.load()) return MakeError(Errc::kConnection, "RDMA connection retired");
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  if (a < base_ || a + size > base_ + size_ || size == 0 || size > 0xffffffffu)
    return MakeError(Errc::kInvalidArgument, "window outside the registered region");
  // rkey_ is a copy: Retire() may deregister mr_ concurrently.
  return RcToken{connection_, a, static_cast<uint32_t>(size), rkey_};
}

}  // namespace s3rdmafs::rdma
