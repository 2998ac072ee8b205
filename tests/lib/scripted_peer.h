// A scripted HTTP/1.1 peer on loopback for client tests: each request gets
// the next Act (a reply, which may come in two pieces, then keep the
// connection, close it, or stall without a word).
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_helpers.h"

namespace s3rdmafs::fakes {

// What the peer does with one request: send `reply` (may be cut short), then
// keep the connection, close it, or stall without a word.
struct Act {
  std::string reply;
  enum { kKeep, kClose, kStall } then = kKeep;
  size_t split = 0;  // if set, the first `split` bytes go alone, the rest a moment later
};

class KeepAlivePeer {
 public:
  explicit KeepAlivePeer(std::deque<Act> acts) : acts_(std::move(acts)) {
    fd_ = fakes::ListenOnLoopback(&port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~KeepAlivePeer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }

 private:
  void Serve() {
    std::vector<std::thread> conns;
    for (;;) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) break;
      ++connections_;
      conns.emplace_back([this, c] { Connection(c); });
    }
    for (auto& t : conns) t.join();
  }
  void Connection(int c) {
    std::string in;
    char buf[4096];
    for (;;) {
      while (in.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) {
          close(c);
          return;
        }
        in.append(buf, n);
      }
      in.erase(0, in.find("\r\n\r\n") + 4);
      ++requests_;
      Act act{"", Act::kClose};
      {
        std::lock_guard lock(mu_);
        if (!acts_.empty()) {
          act = acts_.front();
          acts_.pop_front();
        }
      }
      size_t at = 0;
      if (act.split > 0) {
        at = act.split;
        ssize_t ignored = write(c, act.reply.data(), at);
        (void)ignored;
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
      }
      ssize_t ignored = write(c, act.reply.data() + at, act.reply.size() - at);
      (void)ignored;
      if (act.then == Act::kStall)
        while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (act.then != Act::kKeep) {
        close(c);
        return;
      }
    }
  }
  int fd_;
  int port_;
  std::thread thread_;
  std::mutex mu_;
  std::deque<Act> acts_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0}, requests_{0};
};

inline std::string Ok(const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 206 Partial Content\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra + "\r\n" + body;
}

}  // namespace s3rdmafs::fakes
