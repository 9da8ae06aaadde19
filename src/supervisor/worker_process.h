// Starting a worker: socketpair, fork, hand over the descriptors at their
// well-known numbers, drop to the workers' user, exec. Nothing but exec runs
// in the child, so no library state (libevent, spdlog) crosses the fork in
// use.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/layout.h"

namespace kbgp {

struct SpawnEnvironment {
  int control_fd = -1;     // read-write ControlRegion memfd
  int control_ro_fd = -1;  // read-only reopen, for the admin
  int up_ready_fd = -1;
  int down_ready_fd = -1;
  int admin_socket_fd = -1;
  int log_ring_fd = -1;    // common/log_ring.h; -1 when log export is off
  bool switch_user = false;  // true when running as root
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<std::string> env;  // KEY=VALUE passed to every worker
};

// What a worker may ask of the supervisor over its channel. Beyond
// kMessagesPerSecond the supervisor stops reading that channel until the
// next second (a flooding worker slows only itself; nothing is dropped).
// Beyond kViolationsPerRun invalid messages the worker is killed and
// restarted: a worker that keeps breaking the protocol is not the program
// that was started.
struct ChannelBudget {
  // Every session can end at once on both data workers; well above that.
  static constexpr uint32_t kMessagesPerSecond = 2 * shm::kMaxSessions + 256;
  static constexpr uint32_t kViolationsPerRun = 16;

  uint32_t left = kMessagesPerSecond;
  uint32_t violations = 0;
  bool paused = false;

  void reset() { *this = ChannelBudget{}; }
  // Counts one message read; false once this second's budget is spent.
  bool take() { return left > 0 && --left > 0; }
  // Counts one invalid message; true once there were too many this run.
  bool violation() { return ++violations > kViolationsPerRun; }
};

class WorkerProcess {
 public:
  WorkerProcess(shm::WorkerKind kind, std::string path) : kind_(kind), path_(std::move(path)) {}

  // Forks and execs the worker. On success pid() is set and channel() is the
  // supervisor's end of the socketpair.
  bool start(const SpawnEnvironment& env, std::string* error);
  // Sends `sig` to the running worker. The supervisor keeps no CAP_KILL:
  // when the worker already runs as --user, a short-lived child takes that
  // uid and signals it (docs/security.md). False when it could not.
  bool send_signal(int sig, const SpawnEnvironment& env) const;
  // Called once the process was reaped.
  void exited() {
    pid_ = -1;
    ready_ = false;
    channel_.reset();
  }

  shm::WorkerKind kind() const { return kind_; }
  const std::string& path() const { return path_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  int channel() const { return channel_.get(); }
  bool ready() const { return ready_; }
  void set_ready() { ready_ = true; }

  // Which call the worker reported before dying of SIGSYS (-1: none).
  int reported_syscall = -1;
  uint32_t reported_arch = 0;
  ChannelBudget budget;

  // Restart policy state, kept by the supervisor.
  uint64_t restarts = 0;
  int64_t backoff_ms = 0;
  int64_t restart_at_mono_ns = 0;
  int64_t started_mono_ns = 0;

 private:
  shm::WorkerKind kind_;
  std::string path_;
  pid_t pid_ = -1;
  bool ready_ = false;
  UniqueFd channel_;
};

// Where the worker binaries are: next to our own executable (a build tree)
// when they are there, else the installed PKGLIBEXECDIR.
std::string worker_directory();

}  // namespace kbgp
