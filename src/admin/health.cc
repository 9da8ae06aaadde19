#include "admin/health.h"

#include "common/ipc.h"

namespace kbgp::admin {

namespace {

CheckResult check_worker(const shm::ControlRegion& region, shm::WorkerKind kind, const Now& now) {
  const auto& w = region.workers[static_cast<uint32_t>(kind)];
  CheckResult r;
  r.name = ipc::worker_name(kind);
  auto state = static_cast<shm::WorkerState>(w.state.load(std::memory_order_acquire));
  int64_t beat = w.heartbeat_mono_ns.load(std::memory_order_relaxed);
  if (state != shm::WorkerState::Ready) {
    r.detail = state == shm::WorkerState::Starting ? "starting" : "down";
  } else if (beat <= 0) {
    r.detail = "no heartbeat yet";
  } else if (now.monotonic_ns - beat > kHeartbeatMaxAge) {
    r.detail = "heartbeat " + std::to_string((now.monotonic_ns - beat) / 1'000'000) + " ms old";
  } else {
    r.ok = true;
  }
  return r;
}

}  // namespace

void HealthMonitor::evaluate(const shm::ControlRegion& region, const Now& now) {
  checks_.clear();
  checks_.push_back(check_worker(region, shm::WorkerKind::Listener, now));
  CheckResult uplink = check_worker(region, shm::WorkerKind::Uplink, now);
  checks_.push_back(uplink);

  CheckResult control;
  control.name = "control_stream";
  bool connected = region.control.connected.load(std::memory_order_acquire) != 0;
  control.ok = connected;
  if (!connected) control.detail = "disconnected";
  checks_.push_back(control);

  control_silent_ = false;
  if (connected) {
    // Silence counts from the later of the connect and the last keepalive.
    int64_t since = region.control.since_ns.load(std::memory_order_relaxed);
    int64_t last_rx = region.control.last_rx_ns.load(std::memory_order_relaxed);
    int64_t heard = last_rx > since ? last_rx : since;
    // Any message counts as a sign of life, whether or not it was a keepalive.
    uint64_t messages = region.control.messages_rx.load(std::memory_order_relaxed);
    if (messages != last_messages_rx_) {
      last_messages_rx_ = messages;
      message_seen_ns_ = now.realtime_ns;
    }
    if (message_seen_ns_ > heard) heard = message_seen_ns_;
    if (heard > 0 && now.realtime_ns - heard > kControlSilence) control_silent_ = true;
  }
  if (uplink.ok && connected) initialized_ = true;
  evaluated_ns_ = now.monotonic_ns;
}

HealthReport HealthMonitor::report(const Now& now) const {
  HealthReport r;
  r.checks = checks_;
  bool all_ok = evaluated_ns_ >= 0;
  for (const auto& c : checks_) all_ok = all_ok && c.ok;
  if (!initialized_ && !all_ok && now.monotonic_ns - start_ns_ < kStartupGrace) {
    r.status = "initializing";
  } else if (evaluated_ns_ < 0 || now.monotonic_ns - evaluated_ns_ > kResultMaxAge) {
    r.status = "old_result";
  } else if (!all_ok) {
    r.status = "failing";
  } else if (control_silent_) {
    r.status = "timeout";
  } else {
    r.status = "ok";
  }
  return r;
}

}  // namespace kbgp::admin
