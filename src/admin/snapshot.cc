#include "admin/snapshot.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace kbgp::admin {

std::string bounded_string(const char* field, size_t size) {
  return std::string(field, ::strnlen(field, size));
}

bool read_session(const shm::SessionSlot& slot, uint32_t index, SessionSnapshot* out,
                  const std::function<void()>& between) {
  uint32_t state = slot.state.load(std::memory_order_acquire);
  uint32_t generation = slot.generation.load(std::memory_order_acquire);
  if (state != static_cast<uint32_t>(shm::SlotState::Active) &&
      state != static_cast<uint32_t>(shm::SlotState::Closing))
    return false;
  SessionSnapshot s;
  s.slot = index;
  s.generation = generation;
  s.state = static_cast<shm::SlotState>(state);
  std::memcpy(s.session_id, slot.session_id, sizeof s.session_id);
  s.device = slot.device.unmapped();
  s.local = slot.local.unmapped();
  s.accepted_ns = slot.accepted_ns;
  s.msgs_up = slot.msgs_up.load(std::memory_order_relaxed);
  s.msgs_down = slot.msgs_down.load(std::memory_order_relaxed);
  s.bytes_up = slot.bytes_up.load(std::memory_order_relaxed);
  s.bytes_down = slot.bytes_down.load(std::memory_order_relaxed);
  s.peer_asn = slot.peer_asn.load(std::memory_order_relaxed);
  s.peer_router_id = slot.peer_router_id.load(std::memory_order_relaxed);
  s.hold_time = slot.hold_time.load(std::memory_order_relaxed);
  s.data_connected = slot.data_connected.load(std::memory_order_relaxed) != 0;
  s.data_since_ns = slot.data_since_ns.load(std::memory_order_relaxed);
  s.data_requests = slot.data_requests.load(std::memory_order_relaxed);
  s.data_responses = slot.data_responses.load(std::memory_order_relaxed);
  s.device_id = slot.device_id.load(std::memory_order_relaxed);
  s.md5 = slot.md5 != 0;
  if (between) between();
  // The copies above must not be reordered after the re-check.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (slot.state.load(std::memory_order_relaxed) != state ||
      slot.generation.load(std::memory_order_relaxed) != generation)
    return false;
  // A slot identity the supervisor never filled in is not worth showing.
  if (s.device.family != AF_INET && s.device.family != AF_INET6) return false;
  *out = s;
  return true;
}

std::vector<SessionSnapshot> read_sessions(const shm::ControlRegion& region) {
  std::vector<SessionSnapshot> sessions;
  // Only the slots the supervisor marked in use: the pages of slots never
  // used are then never touched (layout.h slots_in_use).
  for (uint32_t word = 0; word < shm::kMaxSessions / 64; ++word) {
    uint64_t bits = region.slots_in_use[word].load(std::memory_order_acquire);
    while (bits) {
      uint32_t i = word * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
      bits &= bits - 1;
      SessionSnapshot s;
      if (read_session(region.sessions[i], i, &s)) sessions.push_back(s);
    }
  }
  std::stable_sort(sessions.begin(), sessions.end(),
                   [](const SessionSnapshot& a, const SessionSnapshot& b) {
                     return a.accepted_ns < b.accepted_ns;
                   });
  return sessions;
}

std::optional<SessionMetadata> read_metadata(const shm::SessionSlot& slot, uint32_t generation,
                                             int max_tries) {
  for (int attempt = 0; attempt < max_tries; ++attempt) {
    uint32_t before = slot.metadata_seq.load(std::memory_order_acquire);
    if (before & 1) continue;  // being written
    size_t len = std::min<size_t>(slot.metadata_len, sizeof slot.metadata_json);
    SessionMetadata m;
    m.json.assign(slot.metadata_json, ::strnlen(slot.metadata_json, len));
    m.device_name = bounded_string(slot.device_name, sizeof slot.device_name);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot.metadata_seq.load(std::memory_order_relaxed) != before) continue;
    if (slot.generation.load(std::memory_order_relaxed) != generation) return std::nullopt;
    return m;
  }
  return std::nullopt;
}

std::optional<DenySnapshot> read_deny_list(const shm::DenyListView& view, int max_tries) {
  for (int attempt = 0; attempt < max_tries; ++attempt) {
    uint32_t before = view.seq.load(std::memory_order_acquire);
    if (before & 1) continue;  // being written
    DenySnapshot d;
    size_t count = std::min<size_t>(view.count, shm::kDenyViewEntries);
    d.entries.assign(view.entries, view.entries + count);
    d.total = view.total;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (view.seq.load(std::memory_order_relaxed) != before) continue;
    for (auto& e : d.entries) e.device = e.device.unmapped();
    return d;
  }
  return std::nullopt;
}

}  // namespace kbgp::admin
