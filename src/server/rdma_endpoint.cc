#include "rdma_endpoint.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <rdma/rdma_cma.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <vector>

#include "s3rdmafs/common/errno_text.h"
#include "s3rdmafs/common/log.h"

namespace s3rdma::server {

using s3rdmafs::Errc;
using s3rdmafs::MakeError;
namespace rdma = s3rdmafs::rdma;

namespace {
constexpr uint64_t kStagingBytes = 1 << 20;  // one RDMA operation per MiB staged
// Requests in flight per connection: each holds one staging slot, so RDMA
// memory and outstanding work requests per connection are bounded by this.
constexpr int kSlots = 8;
constexpr size_t kMaxUnbound = 16;  // handshakes per principal awaiting rdma_connect
constexpr std::chrono::seconds kUnboundLifetime{60};  // a handshake must bind within this
}  // namespace

struct RdmaEndpoint::Connection {
  uint64_t id = 0;
  std::array<uint8_t, 16> ticket{};
  std::string principal;
  std::chrono::steady_clock::time_point prepared_at;
  uint64_t region_addr = 0, region_size = 0;
  uint32_t region_rkey = 0;
  // mu guards slot ownership, the completion table, and posting/polling the QP.
  std::mutex mu;
  std::condition_variable changed;   // a slot was freed or a completion arrived
  std::array<bool, kSlots> busy{};   // guarded by mu
  std::array<int, kSlots> status{};  // guarded by mu: -1 pending, else an ibv_wc_status
  rdma_cm_id* cm = nullptr;
  ibv_cq* cq = nullptr;
  ibv_mr* staging_mr = nullptr;
  std::vector<char> staging;
  std::atomic<bool> established{false};
  std::atomic<bool> broken{false};
  ~Connection() {
    if (cm && cm->qp) rdma_destroy_qp(cm);
    if (cq) ibv_destroy_cq(cq);
    if (staging_mr) ibv_dereg_mr(staging_mr);
    if (cm) rdma_destroy_id(cm);
  }
};

Result<std::unique_ptr<RdmaEndpoint>> RdmaEndpoint::Listen(const std::string& addr, uint16_t port) {
  std::unique_ptr<RdmaEndpoint> e(new RdmaEndpoint());
  std::string where = addr + ":" + std::to_string(port);
  e->channel_ = rdma_create_event_channel();
  if (!e->channel_ || rdma_create_id(e->channel_, &e->listen_id_, nullptr, RDMA_PS_TCP) != 0)
    return MakeError(Errc::kIo, "rdma_cm: " + std::string(s3rdmafs::ErrnoText(errno)));
  addrinfo hints{}, *ai = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_flags = AI_PASSIVE;
  if (getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &ai) != 0 || !ai)
    return MakeError(Errc::kConfig, "cannot resolve RDMA listen address " + where);
  int rc = rdma_bind_addr(e->listen_id_, ai->ai_addr);
  freeaddrinfo(ai);
  if (rc != 0)
    return MakeError(Errc::kIo, "rdma_bind_addr " + where + ": " + s3rdmafs::ErrnoText(errno));
  if (!e->listen_id_->verbs)
    return MakeError(Errc::kConfig, "RDMA listen address " + where +
                                        " is not on an RDMA device (give the device's IP)");
  if (rdma_listen(e->listen_id_, 64) != 0)
    return MakeError(Errc::kIo, "rdma_listen: " + std::string(s3rdmafs::ErrnoText(errno)));
  e->pd_ = ibv_alloc_pd(e->listen_id_->verbs);
  if (!e->pd_)
    return MakeError(Errc::kIo, "ibv_alloc_pd: " + std::string(s3rdmafs::ErrnoText(errno)));
  LOG_INFO("RDMA (RC) listening on %s, device %s", where.c_str(),
           ibv_get_device_name(e->listen_id_->verbs->device));
  e->events_ = std::thread([ep = e.get()] { ep->EventLoop(); });
  return e;
}

RdmaEndpoint::~RdmaEndpoint() {
  // The event thread blocks in rdma_get_cm_event; the process is ending.
  if (events_.joinable()) events_.detach();
}

Result<rdma::Handshake> RdmaEndpoint::Prepare(const std::string& principal,
                                              const std::string& body) {
  unsigned long long addr = 0, size = 0;
  unsigned rkey = 0;
  if (sscanf(body.c_str(), "region %16llx %16llx %8x", &addr, &size, &rkey) != 3 || size == 0)
    return MakeError(Errc::kInvalidArgument,
                     "rdma-connect body must be 'region <addr:016x> <size:016x> <rkey:08x>'");
  auto c = std::make_shared<Connection>();
  rdma::Handshake h;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&h.connection), sizeof h.connection) != 1 ||
      RAND_bytes(h.ticket.data(), static_cast<int>(h.ticket.size())) != 1)
    return MakeError(Errc::kInternal, "no randomness for the connection ticket");
  c->id = h.connection;
  c->ticket = h.ticket;
  c->principal = principal;
  c->region_addr = addr;
  c->region_size = size;
  c->region_rkey = rkey;
  c->prepared_at = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  // Handshakes that never bind must not pile up: each principal may hold at
  // most kMaxUnbound of them, the oldest going first, and none lives past
  // kUnboundLifetime.
  size_t unbound = 0;
  for (auto it = connections_.begin(); it != connections_.end();) {
    Connection& other = *it->second;
    bool stale = !other.cm && c->prepared_at - other.prepared_at > kUnboundLifetime;
    if (stale) {
      it = connections_.erase(it);
      continue;
    }
    if (!other.cm && other.principal == principal) ++unbound;
    ++it;
  }
  while (unbound >= kMaxUnbound) {
    auto oldest = connections_.end();
    for (auto it = connections_.begin(); it != connections_.end(); ++it)
      if (!it->second->cm && it->second->principal == principal &&
          (oldest == connections_.end() || it->second->prepared_at < oldest->second->prepared_at))
        oldest = it;
    if (oldest == connections_.end()) break;
    connections_.erase(oldest);
    --unbound;
  }
  connections_[c->id] = c;
  return h;
}

std::shared_ptr<RdmaEndpoint::Connection> RdmaEndpoint::Find(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second;
}

void RdmaEndpoint::EventLoop() {
  for (;;) {
    rdma_cm_event* ev = nullptr;
    if (rdma_get_cm_event(channel_, &ev) != 0) return;
    rdma_cm_event_type type = ev->event;
    rdma_cm_id* id = ev->id;
    if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
      rdma::Handshake h;
      std::shared_ptr<Connection> c;
      bool ok = rdma::DecodePrivateData(static_cast<const uint8_t*>(ev->param.conn.private_data),
                                        ev->param.conn.private_data_len, &h);
      if (ok) c = Find(h.connection);
      // The ticket is single-use: a connection binds once.
      {
        std::lock_guard lock(mu_);  // Prepare reads `cm` to tell bound from unbound
        ok = c && !c->cm && CRYPTO_memcmp(c->ticket.data(), h.ticket.data(), 16) == 0;
        if (ok) c->cm = id;
      }
      if (ok) {
        id->context = c.get();
        c->cq = ibv_create_cq(id->verbs, 2 * kSlots, nullptr, nullptr, 0);
        c->staging.resize(kSlots * kStagingBytes);
        c->staging_mr = c->cq ? ibv_reg_mr(pd_, c->staging.data(), kSlots * kStagingBytes,
                                           IBV_ACCESS_LOCAL_WRITE)
                              : nullptr;
        ibv_qp_init_attr qa{};
        qa.send_cq = qa.recv_cq = c->cq;
        qa.qp_type = IBV_QPT_RC;
        qa.cap.max_send_wr = kSlots;
        qa.cap.max_recv_wr = 1;
        qa.cap.max_send_sge = qa.cap.max_recv_sge = 1;
        ok = c->staging_mr && rdma_create_qp(id, pd_, &qa) == 0;
        rdma_conn_param p{};
        p.responder_resources = 16;
        p.initiator_depth = 16;
        ok = ok && rdma_accept(id, &p) == 0;
        if (!ok)
          LOG_WARN("RDMA connection %016llx: set-up failed: %s",
                   static_cast<unsigned long long>(h.connection), s3rdmafs::ErrnoText(errno));
      }
      if (!ok) {
        LOG_INFO("RDMA connect request refused (unknown connection or wrong ticket)");
        rdma_reject(id, nullptr, 0);
        if (c && c->cm == id) {
          std::lock_guard lock(mu_);
          connections_.erase(c->id);
        }
      }
      rdma_ack_cm_event(ev);
      if (!ok && !(c && c->cm == id)) rdma_destroy_id(id);
      continue;
    }
    auto* conn = id ? static_cast<Connection*>(id->context) : nullptr;
    rdma_ack_cm_event(ev);
    if (!conn) continue;
    if (type == RDMA_CM_EVENT_ESTABLISHED) {
      conn->established = true;
      LOG_INFO("RDMA connection %016llx established for %s",
               static_cast<unsigned long long>(conn->id), conn->principal.c_str());
    } else if (type == RDMA_CM_EVENT_DISCONNECTED || type == RDMA_CM_EVENT_DEVICE_REMOVAL ||
               type == RDMA_CM_EVENT_UNREACHABLE || type == RDMA_CM_EVENT_CONNECT_ERROR) {
      LOG_INFO("RDMA connection %016llx closed (%s)", static_cast<unsigned long long>(conn->id),
               rdma_event_str(type));
      conn->broken = true;
      rdma_disconnect(id);
      std::shared_ptr<Connection> drop;
      {
        std::lock_guard lock(mu_);
        auto it = connections_.find(conn->id);
        if (it != connections_.end()) {
          drop = it->second;
          connections_.erase(it);
        }
      }
      // Transfers in progress hold their own reference; wake any waiting for a slot.
      if (drop) drop->changed.notify_all();
    }
  }
}

Result<std::shared_ptr<RdmaEndpoint::Connection>> RdmaEndpoint::Authorize(
    const std::string& principal, const rdma::RcToken& token) {
  auto c = Find(token.connection);
  if (!c || !c->established || c->broken)
    return MakeError(Errc::kNotFound,
                     "no live RDMA connection " + std::to_string(token.connection));
  if (c->principal != principal)
    return MakeError(Errc::kAccessDenied, "the token names another client's connection");
  if (token.rkey != c->region_rkey || token.addr < c->region_addr ||
      token.addr + token.size > c->region_addr + c->region_size)
    return MakeError(Errc::kInvalidArgument,
                     "the token's window is not in a region registered on its connection");
  return c;
}

// Holds one staging slot of a connection for the life of a request.
class RdmaEndpoint::Slot {
 public:
  Slot(Connection& c) : c_(c) {
    std::unique_lock lock(c_.mu);
    c_.changed.wait(lock, [&] {
      for (int i = 0; i < kSlots; ++i)
        if (!c_.busy[i]) return (index_ = i), true;
      return static_cast<bool>(c_.broken);
    });
    if (index_ >= 0) c_.busy[index_] = true;
  }
  ~Slot() {
    if (index_ < 0) return;
    {
      std::lock_guard lock(c_.mu);
      c_.busy[index_] = false;
    }
    c_.changed.notify_all();
  }
  int index() const { return index_; }
  char* data() const { return c_.staging.data() + static_cast<uint64_t>(index_) * kStagingBytes; }

 private:
  Connection& c_;
  int index_ = -1;
};

Result<void> RdmaEndpoint::PostAndWait(Connection& c, const Slot& slot, int opcode, uint64_t remote,
                                       uint32_t rkey, uint32_t n) {
  std::unique_lock lock(c.mu);
  if (c.broken) return MakeError(Errc::kConnection, "RDMA connection closed during the transfer");
  ibv_sge sge{reinterpret_cast<uintptr_t>(slot.data()), n, c.staging_mr->lkey};
  ibv_send_wr wr{}, *bad = nullptr;
  wr.wr_id = static_cast<uint64_t>(slot.index());
  wr.opcode = static_cast<ibv_wr_opcode>(opcode);
  wr.send_flags = IBV_SEND_SIGNALED;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.wr.rdma.remote_addr = remote;
  wr.wr.rdma.rkey = rkey;
  c.status[slot.index()] = -1;
  if (ibv_post_send(c.cm->qp, &wr, &bad) != 0) {
    c.broken = true;
    return MakeError(Errc::kConnection,
                     "ibv_post_send: " + std::string(s3rdmafs::ErrnoText(errno)));
  }
  // Whoever waits polls, and hands each completion to its slot's owner.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (c.status[slot.index()] == -1) {
    ibv_wc wc[kSlots];
    int polled = ibv_poll_cq(c.cq, kSlots, wc);
    if (polled < 0) {
      c.broken = true;
      return MakeError(Errc::kConnection, "ibv_poll_cq failed");
    }
    for (int i = 0; i < polled; ++i) c.status[wc[i].wr_id] = wc[i].status;
    if (polled > 0) {
      c.changed.notify_all();
      continue;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      c.broken = true;
      return MakeError(Errc::kTimedOut, "RDMA operation did not complete in 30 s");
    }
    c.changed.wait_for(lock, std::chrono::microseconds(100));
  }
  if (c.status[slot.index()] != IBV_WC_SUCCESS) {
    c.broken = true;  // a QP in error stays in error: the client must reconnect
    return MakeError(Errc::kConnection,
                     std::string("RDMA operation failed: ") +
                         ibv_wc_status_str(static_cast<ibv_wc_status>(c.status[slot.index()])));
  }
  return {};
}

Result<uint64_t> RdmaEndpoint::WriteFromFile(const std::string& principal,
                                             const rdma::RcToken& token, int fd, uint64_t offset,
                                             uint64_t length) {
  auto c = Authorize(principal, token);
  if (!c) return tl::unexpected(c.error());
  if (length > token.size)
    return MakeError(Errc::kInvalidArgument, "the token's window is smaller than the range");
  Slot slot(**c);
  if (slot.index() < 0) return MakeError(Errc::kConnection, "RDMA connection closed");
  uint64_t done = 0;
  while (done < length) {
    uint64_t n = std::min(kStagingBytes, length - done);
    ssize_t got = pread(fd, slot.data(), n, static_cast<off_t>(offset + done));
    if (got != static_cast<ssize_t>(n))
      return MakeError(Errc::kIo, "object shorter than its size (changed on disk?)");
    if (auto r = PostAndWait(**c, slot, IBV_WR_RDMA_WRITE, token.addr + done, token.rkey,
                             static_cast<uint32_t>(n));
        !r)
      return tl::unexpected(r.error());
    done += n;
  }
  return done;
}

Result<uint64_t> RdmaEndpoint::ReadToSink(const std::string& principal, const rdma::RcToken& token,
                                          const std::function<bool(const char*, size_t)>& sink) {
  auto c = Authorize(principal, token);
  if (!c) return tl::unexpected(c.error());
  Slot slot(**c);
  if (slot.index() < 0) return MakeError(Errc::kConnection, "RDMA connection closed");
  uint64_t done = 0;
  while (done < token.size) {
    uint64_t n = std::min<uint64_t>(kStagingBytes, token.size - done);
    if (auto r = PostAndWait(**c, slot, IBV_WR_RDMA_READ, token.addr + done, token.rkey,
                             static_cast<uint32_t>(n));
        !r)
      return tl::unexpected(r.error());
    if (!sink(slot.data(), n)) return MakeError(Errc::kIo, "storing the object failed");
    done += n;
  }
  return done;
}

uint64_t RdmaEndpoint::established() const {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (auto& [id, c] : connections_) n += c->established && !c->broken;
  return n;
}

Result<std::unique_ptr<RdmaEndpoint::Stream>> RdmaEndpoint::OpenStream(const std::string& principal,
                                                                       const rdma::RcToken& token) {
  auto c = Authorize(principal, token);
  if (!c) return tl::unexpected(c.error());
  std::unique_ptr<Stream> s(new Stream());
  s->ep_ = this;
  s->c_ = *c;
  s->slot_ = std::make_unique<Slot>(**c);
  if (s->slot_->index() < 0) return MakeError(Errc::kConnection, "RDMA connection closed");
  s->token_ = token;
  return s;
}

RdmaEndpoint::Stream::~Stream() = default;

Result<void> RdmaEndpoint::Stream::Write(const char* data, size_t n) {
  while (n > 0) {
    if (done_ + staged_ + n > token_.size)
      return MakeError(Errc::kInvalidArgument, "the token's window is smaller than the range");
    size_t take = std::min<uint64_t>(n, kStagingBytes - staged_);
    memcpy(slot_->data() + staged_, data, take);
    staged_ += take;
    data += take;
    n -= take;
    if (staged_ == kStagingBytes)
      if (auto r = Flush(); !r) return tl::unexpected(r.error());
  }
  return {};
}

Result<uint64_t> RdmaEndpoint::Stream::Flush() {
  if (staged_ > 0) {
    if (auto r = ep_->PostAndWait(*c_, *slot_, IBV_WR_RDMA_WRITE, token_.addr + done_, token_.rkey,
                                  static_cast<uint32_t>(staged_));
        !r)
      return tl::unexpected(r.error());
    done_ += staged_;
    staged_ = 0;
  }
  return done_;
}

Result<size_t> RdmaEndpoint::Stream::Read(char* into, size_t cap) {
  if (taken_ == staged_) {
    if (done_ == token_.size) return 0;
    uint64_t n = std::min<uint64_t>(kStagingBytes, token_.size - done_);
    if (auto r = ep_->PostAndWait(*c_, *slot_, IBV_WR_RDMA_READ, token_.addr + done_, token_.rkey,
                                  static_cast<uint32_t>(n));
        !r)
      return tl::unexpected(r.error());
    done_ += n;
    staged_ = n;
    taken_ = 0;
  }
  size_t give = std::min<uint64_t>(cap, staged_ - taken_);
  memcpy(into, slot_->data() + taken_, give);
  taken_ += give;
  return give;
}

}  // namespace s3rdma::server
