// Small helpers the C++ tests share.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <thread>

namespace s3rdmafs::fakes {

// n bytes of a seeded pseudo-random string: the same seed, the same bytes.
inline std::string Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Polls `f` every 10 ms for up to 5 s; true once it held.
inline bool WaitFor(const std::function<bool()>& f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace s3rdmafs::fakes
