// The supervisor's event loop: accept device connections, hand them to the
// workers, account for every session, keep the workers running.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/ipc.h"
#include "common/shm.h"
#include "supervisor/deny_list.h"
#include "supervisor/env_file.h"
#include "supervisor/md5_support.h"
#include "supervisor/options.h"
#include "supervisor/restart_policy.h"
#include "supervisor/sd_notify.h"
#include "supervisor/session_table.h"
#include "supervisor/worker_process.h"

struct event_base;
struct event;

namespace kbgp {

// What SIGHUP needs to re-read the environment file (supervisor_reload.cc).
struct EnvFileState {
  std::string path;                      // absolute; empty: no --env-file
  EnvValues at_start;                    // the file when kbgp started
  EnvValues applied;                     // after the last SIGHUP that took effect
  std::vector<std::string> args;         // the command line, parsed again with the file
  std::vector<std::string> flags_given;  // flag names on it (they win over the file)
};

class Supervisor {
 public:
  explicit Supervisor(Options options, EnvFileState env_file = {});
  ~Supervisor();
  // Sets up everything that needs privileges; returns the exit code on
  // failure (after logging why), 0 on success.
  int setup();
  // Runs until SIGTERM/SIGINT; returns the process exit code.
  int run();

 private:
  struct EventDeleter {
    void operator()(event* ev) const;
  };
  struct BaseDeleter {
    void operator()(event_base* base) const;
  };
  using EventPtr = std::unique_ptr<event, EventDeleter>;

  static void on_listener_readable(int fd, short what, void* arg);
  static void on_channel_readable(int fd, short what, void* arg);
  static void on_signal(int sig, short what, void* arg);
  static void on_tick(int fd, short what, void* arg);
  static void on_md5_capture(int fd, short what, void* arg);

  void accept_connections(int listen_fd);
  // TCP-MD5: (re)registers the capture socket; asks the uplink for a key.
  void watch_md5_capture();
  bool send_md5_lookup(const Endpoint& device, const Endpoint& local);
  // `exited`: draining what a reaped worker left in its channel (it can no
  // longer be signalled).
  void handle_worker_message(WorkerProcess& worker, bool exited = false);
  // Stops reading a worker's channel until the next tick (its budget is spent).
  void pause_channel(WorkerProcess& worker);
  // SIGKILL/SIGTERM to a worker, logged when it fails.
  void signal_worker(WorkerProcess& worker, int sig);
  void handle_session_done(WorkerProcess& worker, const ipc::SessionDone& msg);
  void handle_deny(const ipc::DenyDevice& msg);
  void handle_allow(const ipc::AllowDevice& msg);
  // The size gauge and the admin's copy follow the list (layout.h DenyListView).
  void deny_list_changed();
  void reap_children();
  void start_worker(WorkerProcess& worker);
  // A worker died: restart it after its backoff, or give up on a crash
  // loop (restart_policy.h).
  void schedule_restart(WorkerProcess& worker);
  static void on_restart_due(int fd, short what, void* arg);
  void start_due_workers(int64_t now_mono_ns);
  bool send_session(WorkerProcess& worker, const SupervisedSession& session);
  // Hands a session to a worker without ever blocking on its channel: a
  // worker that is slow to read (a burst of connections) while it may
  // itself be sending to us must not deadlock both until the send timeout
  // (which used to get it killed, over and over: a connection flood made
  // the uplink crash-loop). What does not fit waits in the worker's
  // backlog, sent in order once the channel is writable; accepting pauses
  // meanwhile (the kernel's listen queue holds new connections).
  enum class HandOff { Sent, Queued, Failed };
  HandOff hand_off(WorkerProcess& worker, const SupervisedSession& session);
  static void on_channel_writable(int fd, short what, void* arg);
  void flush_hand_offs(WorkerProcess& worker);
  void drop_hand_offs(WorkerProcess& worker);  // it died: start_worker sends all again
  void resume_accepting_if_clear();
  void begin_shutdown();
  // SIGHUP: re-read the environment file, apply what can change at run
  // time, log every change (supervisor_reload.cc).
  void reload_env_file();
  void apply_log_level(log::Level level);
  void tick();
  // True when every worker runs, said Ready and has a fresh heartbeat.
  bool workers_healthy(int64_t now_mono_ns) const;
  WorkerProcess& worker(shm::WorkerKind kind) { return workers_[static_cast<size_t>(kind)]; }

  Options options_;
  EnvFileState env_file_;
  std::unique_ptr<event_base, BaseDeleter> base_;
  UniqueFd control_fd_;
  UniqueFd control_ro_fd_;
  SharedMapping control_map_;
  shm::ControlRegion* control_ = nullptr;
  UniqueFd up_ready_;
  UniqueFd down_ready_;
  UniqueFd admin_socket_;
  UniqueFd ca_file_;  // the CA bundle for the uplink, or an empty memfd
  UniqueFd log_ring_fd_;  // common/log_ring.h; invalid with --disable-log-export
  std::vector<UniqueFd> listen_fds_;
  std::vector<EventPtr> listen_events_;
  std::vector<WorkerProcess> workers_;
  std::vector<RestartPolicy> restart_policies_{shm::kWorkerCount};  // by worker kind
  std::vector<EventPtr> channel_events_;  // by worker kind; null while down
  struct PendingHandOff {
    uint32_t slot;
    uint32_t generation;
  };
  std::vector<std::deque<PendingHandOff>> hand_off_backlog_{shm::kWorkerCount};  // by kind
  std::vector<EventPtr> channel_write_events_{shm::kWorkerCount};              // by kind
  bool accepting_paused_ = false;
  uint64_t hand_off_pauses_ = 0;     // since the last log line about them
  int64_t hand_off_logged_ns_ = -10'000'000'000;  // monotonic
  std::vector<EventPtr> signal_events_;
  EventPtr tick_event_;
  SpawnEnvironment spawn_env_;
  std::unique_ptr<SessionTable> sessions_;
  DenyList deny_list_;
  std::unique_ptr<Md5Support> md5_;  // only with --enable-md5-support
  EventPtr md5_event_;
  SystemdNotifier systemd_;
  int64_t last_watchdog_mono_ns_ = 0;
  bool all_ready_logged_ = false;
  bool shutting_down_ = false;
  int64_t shutdown_deadline_mono_ns_ = 0;
  int exit_code_ = 0;
};

}  // namespace kbgp
