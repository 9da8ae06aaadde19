// Exponential backoff with jitter for reconnecting (0.5 s doubling to 30 s,
// each delay spread by +-20 % so many agents do not reconnect in lockstep).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

namespace kbgp::uplink {

class Backoff {
 public:
  Backoff(int64_t initial_ns, int64_t max_ns, double jitter = 0.2)
      : initial_ns_(initial_ns), max_ns_(max_ns), jitter_(jitter), current_ns_(initial_ns),
        rng_(std::random_device{}()) {}

  // The delay before the next attempt; each call doubles the base delay up
  // to the maximum.
  int64_t next_delay_ns() {
    std::uniform_real_distribution<double> spread(1.0 - jitter_, 1.0 + jitter_);
    auto delay = static_cast<int64_t>(static_cast<double>(current_ns_) * spread(rng_));
    current_ns_ = std::min(max_ns_, current_ns_ * 2);
    return std::clamp<int64_t>(delay, 1, max_ns_);
  }
  // After a connection that worked: start small again.
  void reset() { current_ns_ = initial_ns_; }

 private:
  int64_t initial_ns_;
  int64_t max_ns_;
  double jitter_;
  int64_t current_ns_;
  std::mt19937_64 rng_;
};

}  // namespace kbgp::uplink
