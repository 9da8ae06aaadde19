// What every worker does first: take the descriptors the supervisor handed
// over at their well-known numbers (ipc.h), read WorkerInit, set up logging
// and map the ControlRegion. Workers then publish heartbeats in it.
#pragma once

#include <optional>
#include <string>

#include "common/fd.h"
#include "common/ipc.h"
#include "common/layout.h"
#include "common/shm.h"

namespace kbgp {

struct WorkerContext {
  shm::WorkerKind kind{};
  UniqueFd channel;             // SOCK_SEQPACKET to the supervisor
  SharedMapping control_map;
  shm::ControlRegion* control = nullptr;  // read-only mapping for the admin

  shm::WorkerStatus& status() const {
    return control->workers[static_cast<uint32_t>(kind)];
  }
  // Stores the current monotonic time as this worker's heartbeat.
  void heartbeat() const;
  // Tells the supervisor this worker is serving.
  bool send_ready() const;
};

// Blocks until WorkerInit arrives (with a timeout), validates the control
// region. On failure logs why and returns nullopt; the worker then exits.
std::optional<WorkerContext> worker_bootstrap(shm::WorkerKind kind, bool writable_control);

// Takes the supervisor's messages that every worker handles alike
// (SetLogLevel); returns false for any other type, which the worker handles.
bool handle_common_message(const ipc::Received& msg);

// eventfd helpers: add one / read and reset. Errors other than EAGAIN are ignored
// because an eventfd write can only fail on counter overflow.
void eventfd_signal(int fd);
void eventfd_drain(int fd);

}  // namespace kbgp
