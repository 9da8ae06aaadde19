// GET /hc: the agent's health from real checks on the ControlRegion.
//
// The checks run once a second on the admin's timer (evaluate) and /hc
// reports the latest result, with the vendor's five statuses:
//   initializing  the uplink has not yet been Ready with the Control stream
//                 connected since the admin started, and the grace period
//                 (kStartupGrace) has not run out;
//   ok            every check passes;
//   failing       a check fails: listener or uplink heartbeat older than
//                 kHeartbeatMaxAge or not Ready, Control stream down;
//   timeout       the Control stream is up but nothing came from the backend
//                 for kControlSilence (no keepalive, no message counted);
//   old_result    the latest evaluation is older than kResultMaxAge (the
//                 timer that runs the checks stopped running).
// No I/O here; "now" is passed in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "admin/snapshot.h"
#include "common/layout.h"

namespace kbgp::admin {

constexpr int64_t kHeartbeatMaxAge = 5'000'000'000;   // ns
constexpr int64_t kStartupGrace = 30'000'000'000;     // ns
constexpr int64_t kControlSilence = 120'000'000'000;  // ns
constexpr int64_t kResultMaxAge = 5'000'000'000;      // ns

struct CheckResult {
  std::string name;   // "listener", "uplink", "control_stream"
  bool ok = false;
  std::string detail;  // why it fails, empty when ok
};

struct HealthReport {
  const char* status = "initializing";
  std::vector<CheckResult> checks;
};

class HealthMonitor {
 public:
  explicit HealthMonitor(int64_t start_monotonic_ns) : start_ns_(start_monotonic_ns) {}

  // Runs every check against the region and keeps the result.
  void evaluate(const shm::ControlRegion& region, const Now& now);
  // What /hc says at `now`.
  HealthReport report(const Now& now) const;

 private:
  int64_t start_ns_;
  int64_t evaluated_ns_ = -1;  // monotonic time of the last evaluate(); -1 = never
  bool initialized_ = false;   // uplink Ready + Control connected seen once
  bool control_silent_ = false;
  uint64_t last_messages_rx_ = 0;
  int64_t message_seen_ns_ = 0;  // realtime when messages_rx last changed
  std::vector<CheckResult> checks_;
};

}  // namespace kbgp::admin
