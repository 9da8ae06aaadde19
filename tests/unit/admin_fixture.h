// A ControlRegion in ordinary memory, filled like a running agent's, for the
// admin's I/O-free rendering tests.
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <memory>
#include <string>

#include "admin/snapshot.h"
#include "common/endpoint.h"
#include "common/layout.h"

namespace kbgp::test {

constexpr int64_t kSecond = 1'000'000'000;
// 2023-07-25T17:01:25.409183151Z
constexpr int64_t kNowRealtime = 1690304485'409183151;
constexpr int64_t kNowMonotonic = 500 * kSecond;

inline admin::Now test_now(int64_t plus_ns = 0) {
  return {kNowRealtime + plus_ns, kNowMonotonic + plus_ns};
}

inline void copy_text(char* field, size_t size, const std::string& text) {
  std::memset(field, 0, size);
  std::memcpy(field, text.data(), std::min(size - 1, text.size()));
}

inline std::unique_ptr<shm::ControlRegion> make_region() {
  // Value-initialised: every byte, atomics included, starts at zero.
  auto region = std::make_unique<shm::ControlRegion>();
  shm::init_control(region.get());
  auto& c = region->config;
  copy_text(c.instance_id, sizeof c.instance_id, "9ef12a66-47ff-45b5-b56b-23a76941c655");
  copy_text(c.version, sizeof c.version, "0.1.0");
  copy_text(c.target, sizeof c.target, "grpc.api.our1.kentik.com:443");
  copy_text(c.api_email, sizeof c.api_email, "alistair+bgpproxy@kentik.com");
  copy_text(c.md5_interface, sizeof c.md5_interface, "any");
  copy_text(c.listeners[0], sizeof c.listeners[0], "0.0.0.0:179");
  copy_text(c.listeners[1], sizeof c.listeners[1], "[::]:179");
  c.listener_count = 2;
  c.md5_enabled = 1;
  c.site_id = 0;
  c.multi = 10;
  c.agent_start_ns = kNowRealtime - 3600 * kSecond;
  for (uint32_t k = 0; k < shm::kWorkerCount; ++k) {
    region->workers[k].pid = 100 + k;
    region->workers[k].state = static_cast<uint32_t>(shm::WorkerState::Ready);
    region->workers[k].heartbeat_mono_ns = kNowMonotonic - kSecond / 2;
  }
  region->workers[1].restarts = 2;
  auto& cs = region->control;
  cs.connected = 1;
  cs.since_ns = kNowRealtime - 74925903 * int64_t{1'000'000};
  cs.messages_rx = 1311;
  cs.last_tx_ns = kNowRealtime - 45902 * int64_t{1'000'000};
  cs.last_rx_ns = kNowRealtime - 45867 * int64_t{1'000'000};
  cs.last_rtt_us = 1500;
  return region;
}

// Publishes a session in `slot` the way the supervisor does.
inline shm::SessionSlot& add_session(shm::ControlRegion& region, uint32_t slot,
                                     const std::string& device, int64_t accepted_ns,
                                     uint8_t id_byte = 0x11) {
  auto& s = region.sessions[slot];
  s.generation = s.generation + 1;
  std::memset(s.session_id, id_byte, 16);
  s.session_id[6] = 0x41;
  s.session_id[8] = 0x81;
  s.device = *Endpoint::parse(device);
  s.local = *Endpoint::parse("10.250.12.10:179");
  s.accepted_ns = accepted_ns;
  s.msgs_up = 7;
  s.msgs_down = 5;
  s.bytes_up = 1234;
  s.bytes_down = 567;
  s.peer_asn = 64512;
  uint32_t rid = 0;
  inet_pton(AF_INET, "192.0.2.1", &rid);
  s.peer_router_id = rid;
  s.hold_time = 90;
  s.data_connected = 1;
  s.data_since_ns = accepted_ns + kSecond;
  region.slots_in_use[slot / 64] = region.slots_in_use[slot / 64] | (uint64_t{1} << (slot % 64));
  s.state = static_cast<uint32_t>(shm::SlotState::Active);
  return s;
}

inline void set_metadata(shm::SessionSlot& s, const std::string& json) {
  s.metadata_seq = s.metadata_seq + 1;
  copy_text(s.metadata_json, sizeof s.metadata_json, json);
  s.metadata_len = static_cast<uint32_t>(json.size());
  s.metadata_seq = s.metadata_seq + 1;
}

}  // namespace kbgp::test
