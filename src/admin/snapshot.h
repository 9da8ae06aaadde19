// Consistent copies of what other processes write into the ControlRegion.
//
// The admin maps the region read-only and never waits on anyone: it copies
// a slot between two reads of state and generation (acquire) and throws the
// copy away when they differ, and reads the ServerMetadata JSON under its
// seqlock with a bounded number of tries. No I/O here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/endpoint.h"
#include "common/layout.h"

namespace kbgp::admin {

// The two clocks every rendering needs, taken once per request.
struct Now {
  int64_t realtime_ns = 0;
  int64_t monotonic_ns = 0;
};

struct SessionSnapshot {
  uint32_t slot = 0;
  uint32_t generation = 0;
  shm::SlotState state = shm::SlotState::Free;
  uint8_t session_id[16] = {};
  Endpoint device;  // unmapped (a v4-mapped address shows as IPv4)
  Endpoint local;
  int64_t accepted_ns = 0;
  uint64_t msgs_up = 0;
  uint64_t msgs_down = 0;
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  uint32_t peer_asn = 0;
  uint32_t peer_router_id = 0;  // network byte order
  uint32_t hold_time = 0;
  bool data_connected = false;
  int64_t data_since_ns = 0;
  uint64_t data_requests = 0;
  uint64_t data_responses = 0;
  uint32_t device_id = 0;
  bool md5 = false;  // a TCP-MD5 key for the device was installed at accept
};

// Copies slot `index`; false when it is Free or changed while being copied.
// `between` runs after the copy and before the re-check (tests use it to
// change the slot under the reader).
bool read_session(const shm::SessionSlot& slot, uint32_t index, SessionSnapshot* out,
                  const std::function<void()>& between = {});

// Every live (Active or Closing) session, oldest first; only slots marked in
// ControlRegion::slots_in_use are looked at.
std::vector<SessionSnapshot> read_sessions(const shm::ControlRegion& region);

// The uplink-written part of a slot that sits under the metadata seqlock.
struct SessionMetadata {
  std::string json;         // the ServerMetadata object as the uplink wrote it
  std::string device_name;
};
// nullopt when no stable copy was had in `max_tries` (a writer kept it busy),
// or the slot no longer holds `generation`.
std::optional<SessionMetadata> read_metadata(const shm::SessionSlot& slot, uint32_t generation,
                                             int max_tries = 16);

// The supervisor's deny-list (shm::DenyListView), latest deadline first.
struct DenySnapshot {
  std::vector<shm::DenyViewEntry> entries;  // device unmapped
  uint64_t total = 0;                        // the whole list's size
};
// nullopt when no stable copy was had in `max_tries`.
std::optional<DenySnapshot> read_deny_list(const shm::DenyListView& view, int max_tries = 16);

// A NUL-terminated copy of a fixed char field, never reading past it.
std::string bounded_string(const char* field, size_t size);

}  // namespace kbgp::admin
