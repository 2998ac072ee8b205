// RdmaLinks with fake transports: a link that could not be made at mount, a
// lost reply, and a peer that went away are all remade in the background,
// with back-off, and Stop() ends the thread even while attempts fail.
#include "s3rdmafs/fetch/rdma_links.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../lib/test_helpers.h"

using namespace s3rdmafs;
using namespace std::chrono_literals;
using fakes::WaitFor;

namespace {

class FakeTransport final : public rdma::TokenSource {
 public:
  Result<rdma::Window> Open(const void*, uint64_t, rdma::Access) override {
    return rdma::Window{"t", 0};
  }
  bool Close(const rdma::Window&) override { return false; }
  void Retire() override { retired_ = true; }
  bool retired() const override { return retired_; }
  bool Healthy() override { return !retired_ && !peer_gone; }
  std::string Describe() const override { return "fake"; }
  std::atomic<bool> peer_gone{false};

 private:
  std::atomic<bool> retired_{false};
};

// Connects as told: fails while `failing`, counting attempts.
struct Dialer {
  std::atomic<bool> failing{false};
  std::atomic<int> attempts{0};
  std::shared_ptr<FakeTransport> last;
  std::mutex mu;
  fetch::RdmaLinks::Connect Connect() {
    return [this]() -> Result<std::shared_ptr<rdma::TokenSource>> {
      ++attempts;
      if (failing) return MakeError(Errc::kConnection, "refused");
      std::lock_guard lock(mu);
      last = std::make_shared<FakeTransport>();
      return std::shared_ptr<rdma::TokenSource>(last);
    };
  }
};

fetch::RdmaLinks::Options Fast() {
  fetch::RdmaLinks::Options o;
  o.first_retry = 20ms;
  o.max_retry = 80ms;
  o.health_check = 10ms;
  return o;
}

}  // namespace

TEST(RdmaLinks, ALinkThatFailedAtMountIsMadeLater) {
  Dialer d;
  d.failing = true;
  fetch::RdmaLinks links({{"a", d.Connect(), nullptr}}, Fast());
  EXPECT_EQ(links.Current(0), nullptr);
  ASSERT_TRUE(WaitFor([&] { return d.attempts >= 3; }));
  EXPECT_EQ(links.connected(), 0u);
  d.failing = false;
  ASSERT_TRUE(WaitFor([&] { return links.Current(0) != nullptr; }));
  EXPECT_EQ(links.reconnects(), 1u);
  EXPECT_EQ(links.generation(0), 1u);
}

TEST(RdmaLinks, BackOffDoublesUpToTheMaximum) {
  Dialer d;
  d.failing = true;
  fetch::RdmaLinks::Options o = Fast();
  o.first_retry = 40ms;
  o.max_retry = 160ms;
  fetch::RdmaLinks links({{"a", d.Connect(), nullptr}}, o);
  std::this_thread::sleep_for(1000ms);
  // Tries at ~40, 80, 160, 320, 480, ... ms: 7 in the first second (never 25, as at 40 ms flat).
  EXPECT_GE(d.attempts.load(), 3);
  EXPECT_LE(d.attempts.load(), 9);
}

TEST(RdmaLinks, ALostReplyRetiresTheConnectionAndANewOneIsMade) {
  Dialer d;
  auto first = d.Connect()();
  ASSERT_TRUE(first);
  fetch::RdmaLinks links({{"a", d.Connect(), *first}}, Fast());
  auto conn = links.Current(0);
  ASSERT_EQ(conn, *first);
  EXPECT_TRUE(links.Lost(0, conn));
  EXPECT_TRUE(conn->retired()) << "retired before anything reuses its memory";
  EXPECT_FALSE(links.Lost(0, conn)) << "a second lost reply on it changes nothing";
  ASSERT_TRUE(WaitFor([&] { return links.Current(0) != nullptr; }));
  EXPECT_NE(links.Current(0), conn);
  EXPECT_EQ(links.generation(0), 1u);
  // A late lost reply from the old connection leaves the new one alone.
  links.Lost(0, conn);
  EXPECT_NE(links.Current(0), nullptr);
}

TEST(RdmaLinks, APeerThatWentAwayIsNoticedAndReconnected) {
  Dialer d;
  auto first = d.Connect()();
  fetch::RdmaLinks links({{"a", d.Connect(), *first}, {"b", d.Connect(), nullptr}}, Fast());
  ASSERT_TRUE(WaitFor([&] { return links.connected() == 2; }));
  auto* fake = static_cast<FakeTransport*>(links.Current(0).get());
  auto old = links.Current(0);
  fake->peer_gone = true;
  ASSERT_TRUE(WaitFor([&] { return links.Current(0) != old && links.Current(0) != nullptr; }));
  EXPECT_TRUE(old->retired());
  EXPECT_EQ(links.reconnects(), 2u);  // b at start, a after its peer left
}

TEST(RdmaLinks, StopEndsTheThreadWhileAttemptsFail) {
  Dialer d;
  d.failing = true;
  fetch::RdmaLinks links({{"a", d.Connect(), nullptr}}, Fast());
  ASSERT_TRUE(WaitFor([&] { return d.attempts >= 1; }));
  links.Stop();
  int after = d.attempts;
  d.failing = false;
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(d.attempts.load(), after);
  EXPECT_EQ(links.Current(0), nullptr);
}
