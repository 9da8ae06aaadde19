// The supervisor's record of every live session: the slot it occupies in the
// ControlRegion, the duplicate of the device socket and the session memfd it
// keeps (so any worker can be restarted and handed them again), and which
// workers still hold the session.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/endpoint.h"
#include "common/fd.h"
#include "common/ipc.h"
#include "common/layout.h"

namespace kbgp {

struct SupervisedSession {
  uint32_t slot = 0;
  uint32_t generation = 0;
  uint8_t session_id[16] = {};
  Endpoint device;
  Endpoint local;
  int64_t accepted_ns = 0;
  UniqueFd socket;
  UniqueFd memfd;
  bool listener_done = false;
  bool uplink_done = false;
};

class SessionTable {
 public:
  explicit SessionTable(shm::ControlRegion* control);

  // Takes a free slot, creates the session region and publishes the slot.
  // Returns nullptr (and error) when no slot is free or memory is short.
  // `md5`: a TCP-MD5 key for the device was installed at accept.
  SupervisedSession* open(UniqueFd socket, const Endpoint& device, const Endpoint& local,
                          std::string* error, bool md5 = false);
  SupervisedSession* find(uint32_t slot, uint32_t generation);
  // Records that `worker` let go of the session. Frees the slot and closes
  // the supervisor's descriptors once both listener and uplink have; returns
  // true then.
  bool mark_done(SupervisedSession* session, shm::WorkerKind worker);
  ipc::AddSession add_message(const SupervisedSession& session) const;
  size_t size() const { return sessions_.size(); }

  template <typename Fn>
  void for_each(Fn&& fn) {
    for (auto& [slot, session] : sessions_) fn(session);
  }

 private:
  void release(SupervisedSession* session);

  shm::ControlRegion* control_;
  std::vector<uint32_t> free_slots_;
  std::map<uint32_t, SupervisedSession> sessions_;  // by slot
};

}  // namespace kbgp
