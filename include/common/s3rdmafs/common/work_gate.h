// WorkGate: counts work that may still call back into its owner after the
// call that started it returned (a read whose reply is owed, a completion
// that touches the owner's state), so that shutdown can close the gate and
// wait, with a deadline, until the last piece is gone. One mutex and one
// condition variable: no polling, no global counter.
// Thread-safety: every method may be called from any thread; a Pass may be
// released on any thread, including from inside a completion.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

namespace s3rdmafs {

class WorkGate {
 public:
  // One piece of work in flight; leaving its scope (or being reset) ends it.
  class Pass {
   public:
    Pass(Pass&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Pass& operator=(Pass&& other) noexcept {
      if (this != &other) {
        Release();
        gate_ = other.gate_;
        other.gate_ = nullptr;
      }
      return *this;
    }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    ~Pass() { Release(); }
    void Release() {
      if (gate_) gate_->Leave();
      gate_ = nullptr;
    }

   private:
    friend class WorkGate;
    explicit Pass(WorkGate* gate) : gate_(gate) {}
    WorkGate* gate_;
  };

  WorkGate() = default;
  WorkGate(const WorkGate&) = delete;
  WorkGate& operator=(const WorkGate&) = delete;

  // A pass for new work; none once the gate is closed.
  std::optional<Pass> Enter() {
    std::lock_guard lock(mu_);
    if (closed_) return std::nullopt;
    ++outstanding_;
    return Pass(this);
  }
  // Refuses new work, then waits until every pass has ended or `budget` is
  // spent. Returns how many are still out (0: nothing will call back).
  uint64_t CloseAndWait(std::chrono::milliseconds budget) {
    std::unique_lock lock(mu_);
    closed_ = true;
    drained_.wait_for(lock, budget, [this] { return outstanding_ == 0; });
    return outstanding_;
  }
  uint64_t outstanding() const {
    std::lock_guard lock(mu_);
    return outstanding_;
  }

 private:
  void Leave() {
    std::lock_guard lock(mu_);
    if (--outstanding_ == 0) drained_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable drained_;
  uint64_t outstanding_ = 0;  // guarded by mu_
  bool closed_ = false;       // guarded by mu_
};

}  // namespace s3rdmafs
