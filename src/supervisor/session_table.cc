#include "supervisor/session_table.h"

#include <cerrno>
#include <cstring>

#include "common/shm.h"
#include "common/timeutil.h"
#include "common/uuid.h"

namespace kbgp {

SessionTable::SessionTable(shm::ControlRegion* control) : control_(control) {
  free_slots_.reserve(shm::kMaxSessions);
  // Lowest slot first: keeps the wake-up bitmap scans short.
  for (uint32_t s = shm::kMaxSessions; s-- > 0;) free_slots_.push_back(s);
}

SupervisedSession* SessionTable::open(UniqueFd socket, const Endpoint& device,
                                      const Endpoint& local, std::string* error, bool md5) {
  if (free_slots_.empty()) {
    *error = "no free session slot (at most " + std::to_string(shm::kMaxSessions) + ")";
    return nullptr;
  }
  uint32_t slot = free_slots_.back();
  shm::SessionSlot& s = control_->sessions[slot];
  uint32_t generation = s.generation.load(std::memory_order_relaxed) + 1;

  SupervisedSession session;
  session.slot = slot;
  session.generation = generation;
  uuid_v4(session.session_id);
  session.device = device;
  session.local = local;
  session.accepted_ns = realtime_ns();
  session.socket = std::move(socket);
  session.memfd = create_memfd("kbgp-session-" + std::to_string(slot), shm::kSessionRegionSize);
  if (!session.memfd) {
    *error = std::string("cannot create session memory: ") + std::strerror(errno);
    return nullptr;
  }
  {
    auto mapping = SharedMapping::map(session.memfd.get(), shm::kSessionRegionSize, true);
    if (!mapping) {
      *error = std::string("cannot map session memory: ") + std::strerror(errno);
      return nullptr;
    }
    shm::init_session(mapping.as<shm::SessionRegion>(), slot, generation, session.session_id);
  }  // the supervisor never reads ring contents: unmap at once

  // Identity first, then publish: readers check state and generation.
  s.generation.store(generation, std::memory_order_relaxed);
  std::memcpy(s.session_id, session.session_id, 16);
  s.device = device;
  s.local = local;
  s.accepted_ns = session.accepted_ns;
  s.msgs_up.store(0, std::memory_order_relaxed);
  s.bytes_up.store(0, std::memory_order_relaxed);
  s.bytes_down.store(0, std::memory_order_relaxed);
  s.msgs_down.store(0, std::memory_order_relaxed);
  s.peer_asn.store(0, std::memory_order_relaxed);
  s.peer_router_id.store(0, std::memory_order_relaxed);
  s.hold_time.store(0, std::memory_order_relaxed);
  s.data_connected.store(0, std::memory_order_relaxed);
  s.data_since_ns.store(0, std::memory_order_relaxed);
  s.data_requests.store(0, std::memory_order_relaxed);
  s.data_responses.store(0, std::memory_order_relaxed);
  s.device_id.store(0, std::memory_order_relaxed);
  s.metadata_seq.store(0, std::memory_order_relaxed);
  s.metadata_len = 0;
  s.metadata_json[0] = '\0';
  s.device_name[0] = '\0';
  s.md5 = md5 ? 1 : 0;
  control_->slots_in_use[slot / 64].fetch_or(uint64_t{1} << (slot % 64), std::memory_order_release);
  s.state.store(static_cast<uint32_t>(shm::SlotState::Active), std::memory_order_release);

  free_slots_.pop_back();
  auto [it, inserted] = sessions_.emplace(slot, std::move(session));
  return &it->second;
}

SupervisedSession* SessionTable::find(uint32_t slot, uint32_t generation) {
  auto it = sessions_.find(slot);
  if (it == sessions_.end() || it->second.generation != generation) return nullptr;
  return &it->second;
}

bool SessionTable::mark_done(SupervisedSession* session, shm::WorkerKind worker) {
  if (worker == shm::WorkerKind::Listener) {
    session->listener_done = true;
    // Nobody needs the device socket any more; closing our duplicate now
    // lets the listener's abortive close (SO_LINGER 0) send its RST at once.
    session->socket.reset();
  }
  if (worker == shm::WorkerKind::Uplink) session->uplink_done = true;
  if (!(session->listener_done && session->uplink_done)) {
    control_->sessions[session->slot].state.store(static_cast<uint32_t>(shm::SlotState::Closing),
                                                  std::memory_order_release);
    return false;
  }
  release(session);
  return true;
}

void SessionTable::release(SupervisedSession* session) {
  uint32_t slot = session->slot;
  control_->sessions[slot].state.store(static_cast<uint32_t>(shm::SlotState::Free),
                                       std::memory_order_release);
  control_->slots_in_use[slot / 64].fetch_and(~(uint64_t{1} << (slot % 64)),
                                              std::memory_order_release);
  sessions_.erase(slot);  // closes the socket duplicate and the memfd
  free_slots_.push_back(slot);
}

ipc::AddSession SessionTable::add_message(const SupervisedSession& session) const {
  auto msg = ipc::make<ipc::AddSession>(ipc::MsgType::AddSession);
  msg.slot = session.slot;
  msg.generation = session.generation;
  std::memcpy(msg.session_id, session.session_id, 16);
  msg.device = session.device;
  msg.local = session.local;
  msg.accepted_ns = session.accepted_ns;
  return msg;
}

}  // namespace kbgp
