#include "rdma_endpoint.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <poll.h>
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
constexpr size_t kMaxUnbound = 16;  // handshakes per principal awaiting rdma_connect
constexpr std::chrono::seconds kUnboundLifetime{60};  // a handshake must bind within this
}  // namespace

struct RdmaEndpoint::Connection {
  uint64_t id = 0;
  std::array<uint8_t, 16> ticket{};
  std::string principal;
  std::chrono::steady_clock::time_point prepared_at;
  uint64_t region_addr = 0, region_size = 0;
  uint32_t region_rkey = 0;  // 0: a key per request (the client's memory windows)
  // mu guards slot ownership, the completion table and posting to the QP.
  std::mutex mu;
  std::condition_variable changed;  // a slot was freed, a completion arrived, or it broke
  std::vector<bool> busy;           // guarded by mu: per slot
  std::vector<int> status;          // guarded by mu: per slot half, -1 pending, else ibv_wc_status
  uint64_t half_bytes = 0;
  rdma_cm_id* cm = nullptr;
  ibv_comp_channel* completions = nullptr;
  ibv_cq* cq = nullptr;
  ibv_mr* staging_mr = nullptr;
  std::vector<char> staging;
  std::atomic<bool> established{false};
  std::atomic<bool> broken{false};
  std::atomic<bool> stop{false};
  std::thread completer;  // reads the completion channel
  ~Connection() {
    stop = true;
    if (completer.joinable()) completer.join();
    if (cm && cm->qp) rdma_destroy_qp(cm);
    if (cq) ibv_destroy_cq(cq);
    if (completions) ibv_destroy_comp_channel(completions);
    if (staging_mr) ibv_dereg_mr(staging_mr);
    if (cm) rdma_destroy_id(cm);
  }
  // A transfer failed: the QP cannot be trusted; close it so the client
  // notices (rdma_cm DISCONNECTED) and reconnects.
  void Break() {
    if (broken.exchange(true)) return;
    if (cm) rdma_disconnect(cm);
    changed.notify_all();
  }
};

Result<std::unique_ptr<RdmaEndpoint>> RdmaEndpoint::Listen(const std::string& addr, uint16_t port,
                                                           Options options) {
  if (options.staging_per_request < 8192 || options.staging_per_request > (1ull << 30) ||
      options.requests_per_connection < 1 || options.requests_per_connection > 1024)
    return MakeError(Errc::kConfig,
                     "RDMA staging: 8 KiB to 1 GiB per request, 1 to 1024 requests per connection");
  std::unique_ptr<RdmaEndpoint> e(new RdmaEndpoint());
  e->options_ = options;
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
        const size_t slots = options_.requests_per_connection;
        c->half_bytes = options_.staging_per_request / 2;
        c->busy.assign(slots, false);
        c->status.assign(2 * slots, 0);
        c->completions = ibv_create_comp_channel(id->verbs);
        c->cq = c->completions ? ibv_create_cq(id->verbs, static_cast<int>(2 * slots), nullptr,
                                               c->completions, 0)
                               : nullptr;
        if (c->cq && ibv_req_notify_cq(c->cq, 0) != 0) ok = false;
        const uint64_t staging = slots * 2 * c->half_bytes;
        c->staging.resize(staging);
        c->staging_mr = ok && c->cq
                            ? ibv_reg_mr(pd_, c->staging.data(), staging, IBV_ACCESS_LOCAL_WRITE)
                            : nullptr;
        if (c->staging_mr)
          c->completer = std::thread([this, raw = c.get()] { CompletionLoop(raw); });
        ibv_qp_init_attr qa{};
        qa.send_cq = qa.recv_cq = c->cq;
        qa.qp_type = IBV_QPT_RC;
        qa.cap.max_send_wr = 2 * slots;
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
      conn->Break();
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
  // A region key of 0 means the client binds a memory window per request:
  // each token carries its own key, and the client's device enforces it.
  if ((c->region_rkey != 0 && token.rkey != c->region_rkey) || token.addr < c->region_addr ||
      token.addr + token.size > c->region_addr + c->region_size)
    return MakeError(Errc::kInvalidArgument,
                     "the token's window is not in a region registered on its connection");
  return c;
}

// Every completion of the connection, as it arrives: the channel wakes this
// thread (no polling loop, no sleeps), which hands each status to the
// request waiting on that slot half. A 200 ms poll timeout lets it stop.
void RdmaEndpoint::CompletionLoop(Connection* c) {
  while (!c->stop) {
    pollfd p{c->completions->fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    ibv_cq* cq = nullptr;
    void* context = nullptr;
    if (ibv_get_cq_event(c->completions, &cq, &context) != 0) continue;
    ibv_ack_cq_events(cq, 1);
    ibv_req_notify_cq(cq, 0);  // re-arm first, then drain: nothing is missed
    ibv_wc wc[16];
    for (;;) {
      int polled = ibv_poll_cq(cq, 16, wc);
      if (polled <= 0) {
        if (polled < 0) c->Break();
        break;
      }
      {
        std::lock_guard lock(c->mu);
        for (int i = 0; i < polled; ++i)
          if (wc[i].wr_id < c->status.size()) c->status[wc[i].wr_id] = wc[i].status;
      }
      c->changed.notify_all();
    }
  }
}

// Holds one staging slot of a connection for the life of a request.
class RdmaEndpoint::Slot {
 public:
  Slot(Connection& c, std::chrono::milliseconds timeout) : c_(c) {
    std::unique_lock lock(c_.mu);
    c_.changed.wait_for(lock, timeout, [&] {
      for (size_t i = 0; i < c_.busy.size(); ++i)
        if (!c_.busy[i]) return (index_ = static_cast<int>(i)), true;
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
  uint64_t half_bytes() const { return c_.half_bytes; }
  char* half(int h) const {
    return c_.staging.data() + (static_cast<uint64_t>(index_) * 2 + h) * c_.half_bytes;
  }
  uint64_t wr(int h) const { return static_cast<uint64_t>(index_) * 2 + h; }

 private:
  Connection& c_;
  int index_ = -1;
};

namespace {
Result<void> NoSlot(const RdmaEndpoint::Connection& c) {
  if (c.broken) return MakeError(Errc::kConnection, "RDMA connection closed");
  return MakeError(Errc::kTimedOut, "no free RDMA staging slot on this connection in time");
}
}  // namespace

Result<void> RdmaEndpoint::Post(Connection& c, const Slot& slot, int half, int opcode,
                                uint64_t remote, uint32_t rkey, uint32_t n) {
  std::lock_guard lock(c.mu);
  if (c.broken) return MakeError(Errc::kConnection, "RDMA connection closed during the transfer");
  ibv_sge sge{reinterpret_cast<uintptr_t>(slot.half(half)), n, c.staging_mr->lkey};
  ibv_send_wr wr{}, *bad = nullptr;
  wr.wr_id = slot.wr(half);
  wr.opcode = static_cast<ibv_wr_opcode>(opcode);
  wr.send_flags = IBV_SEND_SIGNALED;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.wr.rdma.remote_addr = remote;
  wr.wr.rdma.rkey = rkey;
  c.status[slot.wr(half)] = -1;
  if (ibv_post_send(c.cm->qp, &wr, &bad) != 0) {
    c.status[slot.wr(half)] = IBV_WC_GENERAL_ERR;
    c.Break();
    return MakeError(Errc::kConnection,
                     "ibv_post_send: " + std::string(s3rdmafs::ErrnoText(errno)));
  }
  return {};
}

Result<void> RdmaEndpoint::Wait(Connection& c, const Slot& slot, int half) {
  std::unique_lock lock(c.mu);
  const uint64_t wr = slot.wr(half);
  if (!c.changed.wait_for(lock, options_.op_timeout, [&] { return c.status[wr] != -1; })) {
    lock.unlock();
    c.Break();
    return MakeError(Errc::kTimedOut, "RDMA operation did not complete in time");
  }
  if (c.status[wr] != IBV_WC_SUCCESS) {
    const int status = c.status[wr];
    lock.unlock();
    c.Break();  // a QP in error stays in error: the client must reconnect
    return MakeError(Errc::kConnection, std::string("RDMA operation failed: ") +
                                            ibv_wc_status_str(static_cast<ibv_wc_status>(status)));
  }
  return {};
}

Result<void> RdmaEndpoint::Settle(Connection& c, const Slot& slot, bool (&inflight)[2], int half) {
  for (int h = 0; h < 2; ++h) {
    if ((half >= 0 && h != half) || !inflight[h]) continue;
    inflight[h] = false;
    if (auto r = Wait(c, slot, h); !r) {
      (void)Settle(c, slot, inflight);
      return r;
    }
  }
  return {};
}

void RdmaEndpoint::Abandon(Connection& c, const Slot& slot, bool (&inflight)[2]) {
  c.Break();  // the QP goes to error: outstanding operations flush, nothing more moves
  (void)Settle(c, slot, inflight);
}

Result<uint64_t> RdmaEndpoint::WriteFromFile(const std::string& principal,
                                             const rdma::RcToken& token, int fd, uint64_t offset,
                                             uint64_t length) {
  auto c = Authorize(principal, token);
  if (!c) return tl::unexpected(c.error());
  if (length > token.size)
    return MakeError(Errc::kInvalidArgument, "the token's window is smaller than the range");
  Slot slot(**c, options_.slot_timeout);
  if (slot.index() < 0) return tl::unexpected(NoSlot(**c).error());
  // While one half is on the wire, the next is read from the file.
  bool inflight[2] = {false, false};
  uint64_t done = 0;
  for (int h = 0; done < length; h ^= 1) {
    if (auto r = Settle(**c, slot, inflight, h); !r) return tl::unexpected(r.error());
    uint64_t n = std::min(slot.half_bytes(), length - done);
    ssize_t got = pread(fd, slot.half(h), n, static_cast<off_t>(offset + done));
    if (got != static_cast<ssize_t>(n)) {
      Abandon(**c, slot, inflight);
      return MakeError(Errc::kIo, "object shorter than its size (changed on disk?)");
    }
    if (auto r = Post(**c, slot, h, IBV_WR_RDMA_WRITE, token.addr + done, token.rkey,
                      static_cast<uint32_t>(n));
        !r) {
      Abandon(**c, slot, inflight);
      return tl::unexpected(r.error());
    }
    inflight[h] = true;
    done += n;
  }
  if (auto r = Settle(**c, slot, inflight); !r) return tl::unexpected(r.error());
  return done;
}

Result<uint64_t> RdmaEndpoint::ReadToSink(const std::string& principal, const rdma::RcToken& token,
                                          const std::function<bool(const char*, size_t)>& sink) {
  auto c = Authorize(principal, token);
  if (!c) return tl::unexpected(c.error());
  Slot slot(**c, options_.slot_timeout);
  if (slot.index() < 0) return tl::unexpected(NoSlot(**c).error());
  // The next half is RDMA-READ while the last one is handed to the sink.
  bool inflight[2] = {false, false};
  uint64_t size[2] = {0, 0};
  uint64_t posted = 0, done = 0;
  auto post = [&](int h) -> Result<void> {
    size[h] = std::min<uint64_t>(slot.half_bytes(), token.size - posted);
    if (auto r = Post(**c, slot, h, IBV_WR_RDMA_READ, token.addr + posted, token.rkey,
                      static_cast<uint32_t>(size[h]));
        !r)
      return r;
    inflight[h] = true;
    posted += size[h];
    return {};
  };
  for (int h = 0; h < 2 && posted < token.size; ++h)
    if (auto r = post(h); !r) {
      Abandon(**c, slot, inflight);
      return tl::unexpected(r.error());
    }
  for (int h = 0; done < token.size; h ^= 1) {
    if (auto r = Settle(**c, slot, inflight, h); !r) return tl::unexpected(r.error());
    if (!sink(slot.half(h), size[h])) {
      Abandon(**c, slot, inflight);
      return MakeError(Errc::kIo, "storing the object failed");
    }
    done += size[h];
    if (posted < token.size)
      if (auto r = post(h); !r) {
        Abandon(**c, slot, inflight);
        return tl::unexpected(r.error());
      }
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
  s->slot_ = std::make_unique<Slot>(**c, options_.slot_timeout);
  if (s->slot_->index() < 0) return tl::unexpected(NoSlot(**c).error());
  s->token_ = token;
  return s;
}

void RdmaEndpoint::Stream::Drain() {
  (void)ep_->Settle(*c_, *slot_, inflight_);  // a failure closes the connection: nothing more moves
}

RdmaEndpoint::Stream::~Stream() {
  // Operations still out (the request ended early): none may outlive the slot.
  if (slot_ && slot_->index() >= 0 && (inflight_[0] || inflight_[1]))
    ep_->Abandon(*c_, *slot_, inflight_);
}

Result<void> RdmaEndpoint::Stream::Write(const char* data, size_t n) {
  while (n > 0) {
    if (posted_ + filled_[cur_] + n > token_.size)
      return MakeError(Errc::kInvalidArgument, "the token's window is smaller than the range");
    size_t take = std::min<uint64_t>(n, slot_->half_bytes() - filled_[cur_]);
    memcpy(slot_->half(cur_) + filled_[cur_], data, take);
    filled_[cur_] += take;
    data += take;
    n -= take;
    if (filled_[cur_] == slot_->half_bytes())
      if (auto r = PostCurrent(); !r) return r;
  }
  return {};
}

// Sends the current half and makes the other one current (waiting for its
// last operation first): the caller fills one half while the other flies.
Result<void> RdmaEndpoint::Stream::PostCurrent() {
  if (auto r = ep_->Post(*c_, *slot_, cur_, IBV_WR_RDMA_WRITE, token_.addr + posted_, token_.rkey,
                         static_cast<uint32_t>(filled_[cur_]));
      !r)
    return r;
  inflight_[cur_] = true;
  posted_ += filled_[cur_];
  filled_[cur_] = 0;
  cur_ ^= 1;
  return ep_->Settle(*c_, *slot_, inflight_, cur_);
}

Result<uint64_t> RdmaEndpoint::Stream::Flush() {
  if (filled_[cur_] > 0)
    if (auto r = PostCurrent(); !r) return tl::unexpected(r.error());
  if (auto r = ep_->Settle(*c_, *slot_, inflight_); !r) return tl::unexpected(r.error());
  return posted_;
}

// Posts an RDMA READ of the window's next bytes into half `h`.
Result<void> RdmaEndpoint::Stream::ReadAhead(int h) {
  filled_[h] = std::min<uint64_t>(slot_->half_bytes(), token_.size - posted_);
  if (auto r = ep_->Post(*c_, *slot_, h, IBV_WR_RDMA_READ, token_.addr + posted_, token_.rkey,
                         static_cast<uint32_t>(filled_[h]));
      !r)
    return r;
  inflight_[h] = true;
  posted_ += filled_[h];
  return {};
}

Result<size_t> RdmaEndpoint::Stream::Read(char* into, size_t cap) {
  if (!started_) {
    started_ = true;
    for (int h = 0; h < 2 && posted_ < token_.size; ++h)
      if (auto r = ReadAhead(h); !r) return tl::unexpected(r.error());
    taken_ = 0;
  } else if (taken_ == filled_[cur_]) {
    // Half cur_ is handed out: read the next bytes into it, move to the other.
    filled_[cur_] = 0;
    if (posted_ < token_.size)
      if (auto r = ReadAhead(cur_); !r) return tl::unexpected(r.error());
    cur_ ^= 1;
    taken_ = 0;
  }
  if (auto r = ep_->Settle(*c_, *slot_, inflight_, cur_); !r) return tl::unexpected(r.error());
  if (filled_[cur_] == 0) return 0;  // the window's end
  size_t give = std::min<uint64_t>(cap, filled_[cur_] - taken_);
  memcpy(into, slot_->half(cur_) + taken_, give);
  taken_ += give;
  return give;
}

}  // namespace s3rdma::server
