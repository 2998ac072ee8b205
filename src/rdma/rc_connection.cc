#include "s3rdmafs/rdma/rc_connection.h"

#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <variant>

#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/rdma/device.h"

namespace s3rdmafs::rdma {
namespace {

constexpr int kLocalOps = 32;  // send queue depth: binds and invalidations
constexpr auto kLocalOpDeadline = std::chrono::seconds(2);

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
                                                            const RcOptions& options) {
  const int timeout_ms = options.timeout_ms;
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
  // With windows, the region itself grants no remote access: only a bound
  // window does, for its own bytes.
  ibv_device_attr attr{};
  const bool type2 = ibv_query_device(c->id_->verbs, &attr) == 0 &&
                     (attr.device_cap_flags &
                      (IBV_DEVICE_MEM_WINDOW_TYPE_2A | IBV_DEVICE_MEM_WINDOW_TYPE_2B)) != 0;
  c->windows_ = options.memory_windows && type2;
  c->mr_ = ibv_reg_mr(
      c->pd_, region, region_size,
      c->windows_ ? IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND
                  : IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
  if (!c->mr_)
    return MakeError(Errc::kNoSpace,
                     "cannot register the cache arena: " + std::string(ErrnoText(errno)));
  c->base_ = reinterpret_cast<uintptr_t>(region);
  c->size_ = region_size;
  c->cq_ = ibv_create_cq(c->id_->verbs, kLocalOps + 1, nullptr, nullptr, 0);
  if (!c->cq_) return MakeError(Errc::kIo, "ibv_create_cq: " + std::string(ErrnoText(errno)));
  ibv_qp_init_attr qa{};
  qa.send_cq = qa.recv_cq = c->cq_;
  qa.qp_type = IBV_QPT_RC;
  qa.cap.max_send_wr = kLocalOps;  // binds and invalidations, one at a time
  qa.cap.max_recv_wr = 1;
  qa.cap.max_send_sge = qa.cap.max_recv_sge = 1;
  if (rdma_create_qp(c->id_, c->pd_, &qa) != 0)
    return MakeError(Errc::kIo, "rdma_create_qp: " + std::string(ErrnoText(errno)));

  c->rkey_ = c->windows_ ? 0 : c->mr_->rkey;  // 0 tells the server: a key per window
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
  // Windows first: a bound type 2 window holds its QP, and rdma_rxe waits
  // out such a reference for tens of seconds when the QP is destroyed.
  for (ibv_mw* mw : all_windows_) ibv_dealloc_mw(mw);
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
  // The QP goes to error: it takes no incoming RDMA operation any more.
  if (id_ && id_->qp) rdma_disconnect(id_);
  // Without windows the region's key is what tokens carry: it dies with the
  // registration. With windows, bound ones keep the region registered until
  // the QP is destroyed; the QP in error already refuses them.
  if (mr_ && !windows_) {
    ibv_dereg_mr(mr_);
    mr_ = nullptr;
  }
}

bool RcConnection::Healthy() {
  std::lock_guard lock(retire_mu_);
  if (retired_ || disconnected_ || broken_) return false;
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

std::string RcConnection::Describe() const {
  char buf[64];
  snprintf(buf, sizeof buf, "RC connection %016llx", static_cast<unsigned long long>(connection_));
  return std::string(buf) + " on " + device();
}

std::string RcConnection::device() const { return ibv_get_device_name(id_->verbs->device); }

Result<Window> RcConnection::Open(const void* addr, uint64_t size, Access access) {
  if (retired_.load()) return MakeError(Errc::kConnection, "RDMA connection retired");
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  if (a < base_ || a + size > base_ + size_ || size == 0 || size > 0xffffffffu)
    return MakeError(Errc::kInvalidArgument, "window outside the registered region");
  if (!windows_) return Window{FormatToken(RcToken{connection_, a, uint32_t(size), rkey_}), 0};
  std::lock_guard lock(ops_mu_);
  if (retired_.load() || broken_.load())
    return MakeError(Errc::kConnection, "RDMA connection retired");
  ibv_mw* mw = nullptr;
  if (!free_windows_.empty()) {
    mw = free_windows_.back();
    free_windows_.pop_back();
  } else {
    mw = ibv_alloc_mw(pd_, IBV_MW_TYPE_2);
    if (!mw)
      return MakeError(Errc::kNoSpace,
                       "cannot allocate an RDMA memory window: " + std::string(ErrnoText(errno)));
    all_windows_.push_back(mw);
  }
  // A fresh key each time: a token of an earlier binding of this window
  // never matches again.
  const uint32_t key = ibv_inc_rkey(mw->rkey);
  ibv_send_wr wr{};
  wr.opcode = IBV_WR_BIND_MW;
  wr.bind_mw.mw = mw;
  wr.bind_mw.rkey = key;
  wr.bind_mw.bind_info.mr = mr_;
  wr.bind_mw.bind_info.addr = a;
  wr.bind_mw.bind_info.length = size;
  wr.bind_mw.bind_info.mw_access_flags =
      access == Access::kServerWrites ? IBV_ACCESS_REMOTE_WRITE : IBV_ACCESS_REMOTE_READ;
  if (auto r = RunLocal(wr); !r) return tl::unexpected(r.error());  // mw stays out of use
  mw->rkey = key;
  const uint64_t id = next_window_++;
  bound_[id] = BoundWindow{mw, key};
  return Window{FormatToken(RcToken{connection_, a, static_cast<uint32_t>(size), key}), id};
}

bool RcConnection::Close(const Window& window) {
  if (window.id == 0) return false;  // the region's key: only a retirement fences it
  std::lock_guard lock(ops_mu_);
  auto it = bound_.find(window.id);
  if (it == bound_.end()) return true;
  const BoundWindow w = it->second;
  bound_.erase(it);
  ibv_send_wr wr{};
  wr.opcode = IBV_WR_LOCAL_INV;
  wr.invalidate_rkey = w.rkey;
  if (auto r = RunLocal(wr); !r) return false;  // the window may still be live: retire
  free_windows_.push_back(w.mw);
  return true;
}

Result<void> RcConnection::RunLocal(ibv_send_wr& wr) {
  if (broken_.load()) return MakeError(Errc::kConnection, "the RDMA connection is broken");
  wr.wr_id = ++next_op_;
  wr.send_flags = IBV_SEND_SIGNALED;
  ibv_send_wr* bad = nullptr;
  auto fail = [this](std::string why) -> Result<void> {
    broken_ = true;  // Healthy() says so: the connection is remade
    return MakeError(Errc::kConnection, std::move(why));
  };
  if (ibv_post_send(id_->qp, &wr, &bad) != 0)
    return fail(std::string("ibv_post_send (local operation): ") + ErrnoText(errno));
  // Local operations complete in microseconds; the deadline is for a device
  // that stopped answering.
  const auto deadline = std::chrono::steady_clock::now() + kLocalOpDeadline;
  for (uint32_t spins = 0;; ++spins) {
    ibv_wc wc{};
    const int n = ibv_poll_cq(cq_, 1, &wc);
    if (n < 0) return fail("ibv_poll_cq failed");
    if (n == 1 && wc.wr_id == wr.wr_id) {
      if (wc.status != IBV_WC_SUCCESS)
        return fail(std::string(wr.opcode == IBV_WR_BIND_MW ? "binding" : "invalidating") +
                    " a memory window failed: " + ibv_wc_status_str(wc.status));
      return {};
    }
    if (n == 1) continue;  // a late completion of an operation that timed out
    if (std::chrono::steady_clock::now() > deadline)
      return fail("a local RDMA operation did not complete within 2 s");
    if (spins > 64) std::this_thread::yield();
  }
}

Result<RcToken> RcConnection::TokenOf(const Window& window) {
  auto t = ParseToken(window.token);
  if (!t) return tl::unexpected(t.error());
  if (auto* rc = std::get_if<RcToken>(&*t)) return *rc;
  return MakeError(Errc::kInvalidArgument, "not an RC token");
}

}  // namespace s3rdmafs::rdma
