#include "supervisor/supervisor.h"

#include <event2/event.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/timeutil.h"
#include "common/uuid.h"
#include "config.h"
#include "supervisor/listeners.h"

namespace kbgp {

namespace {

constexpr int kListenBacklog = 1024;
constexpr int64_t kMinBackoffMs = 250;
constexpr int64_t kMaxBackoffMs = 30000;
constexpr int64_t kStableRunNs = 60LL * 1000000000;  // a run this long resets the backoff
constexpr int64_t kShutdownGraceNs = 5LL * 1000000000;
constexpr size_t kMaxAcceptsPerWake = 64;
constexpr int64_t kHeartbeatFreshNs = 5LL * 1000000000;

void copy_string(char* dst, size_t size, const std::string& src) {
  size_t n = std::min(size - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    std::string name = sigabbrev_np(sig) ? sigabbrev_np(sig) : std::to_string(sig);
    if (sig == SIGSYS) return "signal SIGSYS (forbidden system call, seccomp)";
    return "signal SIG" + name;
  }
  return "status " + std::to_string(status);
}

// Variables a worker may need from our environment; nothing else (and never
// the API token) is passed on.
std::vector<std::string> worker_environment() {
  static const char* kPassed[] = {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
                                  "no_proxy",    "NO_PROXY",    "grpc_proxy", "GRPC_VERBOSITY",
                                  "GRPC_TRACE",  "TZ"};
  std::vector<std::string> env;
  for (const char* name : kPassed) {
    const char* value = ::getenv(name);
    if (value) env.push_back(std::string(name) + "=" + value);
  }
  return env;
}

}  // namespace

void Supervisor::EventDeleter::operator()(event* ev) const { event_free(ev); }
void Supervisor::BaseDeleter::operator()(event_base* base) const { event_base_free(base); }

Supervisor::Supervisor(Options options) : options_(std::move(options)) {
  workers_.reserve(shm::kWorkerCount);
  std::string dir = worker_directory();
  workers_.emplace_back(shm::WorkerKind::Listener, dir + "/kbgp-listener");
  workers_.emplace_back(shm::WorkerKind::Uplink, dir + "/kbgp-uplink");
  workers_.emplace_back(shm::WorkerKind::Admin, dir + "/kbgp-admin");
  channel_events_.resize(shm::kWorkerCount);
}

Supervisor::~Supervisor() = default;

int Supervisor::setup() {
  // Sessions hold two descriptors each here; take what the hard limit allows.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  if (::geteuid() == 0) {
    passwd* pw = ::getpwnam(options_.user.c_str());
    if (!pw) {
      log::error("the workers' user does not exist: create it (useradd --system --no-create-home "
                 "--shell /usr/sbin/nologin " + options_.user + ") or name another with --user",
                 {{"user", options_.user}});
      return 1;
    }
    if (pw->pw_uid == 0) {
      log::error("the workers' user must not be root", {{"user", options_.user}});
      return 1;
    }
    spawn_env_.switch_user = true;
    spawn_env_.uid = pw->pw_uid;
    spawn_env_.gid = pw->pw_gid;
  } else {
    log::warn("not running as root: workers keep this user, TCP-MD5 capture is unavailable");
  }
  for (auto& w : workers_) {
    if (::access(w.path().c_str(), X_OK) != 0) {
      log::error("worker binary missing", {{"path", w.path()}});
      return 1;
    }
  }

  control_fd_ = create_memfd("kbgp-control", shm::kControlRegionSize);
  if (!control_fd_) {
    log::error("cannot create the control region", {{"error", std::strerror(errno)}});
    return 1;
  }
  control_map_ = SharedMapping::map(control_fd_.get(), shm::kControlRegionSize, true);
  control_ro_fd_ = reopen_read_only(control_fd_.get());
  if (!control_map_ || !control_ro_fd_) {
    log::error("cannot map the control region", {{"error", std::strerror(errno)}});
    return 1;
  }
  control_ = control_map_.as<shm::ControlRegion>();
  shm::init_control(control_);

  shm::ConfigView& cfg = control_->config;
  uint8_t instance[16];
  uuid_v4(instance);
  copy_string(cfg.instance_id, sizeof cfg.instance_id, uuid_to_string(instance));
  copy_string(cfg.version, sizeof cfg.version, PACKAGE_VERSION);
  copy_string(cfg.target, sizeof cfg.target, options_.target);
  copy_string(cfg.api_email, sizeof cfg.api_email, options_.email);
  copy_string(cfg.md5_interface, sizeof cfg.md5_interface, options_.md5_interface);
  cfg.md5_enabled = options_.enable_md5 ? 1 : 0;
  cfg.site_id = options_.site_id;
  cfg.multi = options_.multi;
  cfg.agent_start_ns = realtime_ns();

  for (const auto& where : options_.listen) {
    std::string error;
    UniqueFd fd = bind_tcp_listener(where, kListenBacklog, &error);
    if (!fd) {
      log::error("cannot listen for devices", {{"error", error}});
      return 1;
    }
    copy_string(cfg.listeners[cfg.listener_count], sizeof cfg.listeners[0], where.to_string());
    ++cfg.listener_count;
    listen_fds_.push_back(std::move(fd));
  }
  auto admin_at = Endpoint::parse_address(options_.metrics_addr);
  admin_at->port = options_.metrics_port;
  std::string error;
  admin_socket_ = bind_tcp_listener(*admin_at, 64, &error);
  if (!admin_socket_) {
    log::error("cannot listen for the status API", {{"error", error}});
    return 1;
  }

  // Opened here, as root: the workers' user may not be able to read it, and
  // the uplink must not open files at all once confined.
  if (!options_.tls_ca_file.empty()) {
    ca_file_ = UniqueFd(::open(options_.tls_ca_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ca_file_) {
      log::error("cannot open --tls-ca-file", {{"path", options_.tls_ca_file},
                                               {"error", std::strerror(errno)}});
      return 1;
    }
  } else {
    ca_file_ = create_memfd("kbgp-no-ca", 0);
  }

  up_ready_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  down_ready_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!up_ready_ || !down_ready_) {
    log::error("cannot create eventfds", {{"error", std::strerror(errno)}});
    return 1;
  }
  spawn_env_.control_fd = control_fd_.get();
  spawn_env_.control_ro_fd = control_ro_fd_.get();
  spawn_env_.up_ready_fd = up_ready_.get();
  spawn_env_.down_ready_fd = down_ready_.get();
  spawn_env_.admin_socket_fd = admin_socket_.get();
  spawn_env_.env = worker_environment();
  sessions_ = std::make_unique<SessionTable>(control_);
  return 0;
}

int Supervisor::run() {
  base_.reset(event_base_new());
  if (!base_) {
    log::error("cannot create the event loop");
    return 1;
  }
  for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP}) {
    signal_events_.emplace_back(evsignal_new(base_.get(), sig, &Supervisor::on_signal, this));
    evsignal_add(signal_events_.back().get(), nullptr);
  }
  ::signal(SIGPIPE, SIG_IGN);
  for (auto& fd : listen_fds_) {
    listen_events_.emplace_back(event_new(base_.get(), fd.get(), EV_READ | EV_PERSIST,
                                          &Supervisor::on_listener_readable, this));
    event_add(listen_events_.back().get(), nullptr);
  }
  tick_event_.reset(event_new(base_.get(), -1, EV_PERSIST, &Supervisor::on_tick, this));
  timeval one_second{1, 0};
  event_add(tick_event_.get(), &one_second);

  for (auto& w : workers_) start_worker(w);
  std::string listeners;
  for (uint32_t i = 0; i < control_->config.listener_count; ++i)
    listeners += (i ? "," : "") + std::string(control_->config.listeners[i]);
  log::info("kbgp started", {{"version", PACKAGE_VERSION},
                             {"instance", control_->config.instance_id},
                             {"listen", listeners},
                             {"target", options_.target},
                             {"status-api", options_.metrics_addr + ":" +
                                                std::to_string(options_.metrics_port)}});
  event_base_dispatch(base_.get());
  log::info("kbgp stopped");
  return exit_code_;
}

void Supervisor::start_worker(WorkerProcess& w) {
  std::string error;
  auto kind = static_cast<uint32_t>(w.kind());
  if (!w.start(spawn_env_, &error)) {
    log::error("cannot start worker", {{"worker", ipc::worker_name(w.kind())}, {"error", error}});
    schedule_restart(w);
    return;
  }
  // Sends may block briefly rather than fail when a worker is slow to read;
  // a worker that stays stuck is killed and restarted.
  timeval send_timeout{2, 0};
  ::setsockopt(w.channel(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  int flags = ::fcntl(w.channel(), F_GETFL);
  ::fcntl(w.channel(), F_SETFL, flags & ~O_NONBLOCK);

  w.started_mono_ns = monotonic_ns();
  shm::WorkerStatus& status = control_->workers[kind];
  status.pid.store(static_cast<uint32_t>(w.pid()), std::memory_order_relaxed);
  status.state.store(static_cast<uint32_t>(shm::WorkerState::Starting), std::memory_order_relaxed);
  status.heartbeat_mono_ns.store(monotonic_ns(), std::memory_order_relaxed);
  status.started_ns.store(realtime_ns(), std::memory_order_relaxed);

  auto init = ipc::make<ipc::WorkerInit>(ipc::MsgType::WorkerInit);
  init.log_level = static_cast<uint8_t>(options_.log_level);
  init.log_format = static_cast<uint8_t>(options_.human_logs ? ipc::LogFormat::Human
                                                             : ipc::LogFormat::Json);
  init.worker_kind = kind;
  bool ok = ipc::send_msg(w.channel(), &init, sizeof init);
  if (ok && w.kind() == shm::WorkerKind::Uplink) {
    auto up = ipc::make<ipc::UplinkInit>(ipc::MsgType::UplinkInit);
    copy_string(up.target, sizeof up.target, options_.target);
    copy_string(up.api_email, sizeof up.api_email, options_.email);
    copy_string(up.api_token, sizeof up.api_token, options_.token);
    copy_string(up.ca_file, sizeof up.ca_file, options_.tls_ca_file);
    copy_string(up.tls_server_name, sizeof up.tls_server_name, options_.tls_server_name);
    up.site_id = options_.site_id;
    up.multi = options_.multi;
    up.insecure = options_.insecure ? 1 : 0;
    int ca_fd = ca_file_.get();
    ok = ipc::send_msg(w.channel(), &up, sizeof up, &ca_fd, 1);
    std::memset(&up, 0, sizeof up);  // the token stays nowhere longer than needed
  }
  if (w.kind() != shm::WorkerKind::Admin) {
    sessions_->for_each([&](SupervisedSession& s) {
      if (ok) ok = send_session(w, s);
    });
  }
  if (!ok) {
    log::error("cannot initialise worker", {{"worker", ipc::worker_name(w.kind())},
                                            {"error", std::strerror(errno)}});
    ::kill(w.pid(), SIGKILL);  // reaped and restarted through SIGCHLD
  }
  channel_events_[kind].reset(event_new(base_.get(), w.channel(), EV_READ | EV_PERSIST,
                                        &Supervisor::on_channel_readable, this));
  event_add(channel_events_[kind].get(), nullptr);
  log::info("worker started", {{"worker", ipc::worker_name(w.kind())}, {"pid", w.pid()}});
}

bool Supervisor::send_session(WorkerProcess& w, const SupervisedSession& s) {
  if (!w.running()) return true;  // handed over when it is back
  ipc::AddSession msg = sessions_->add_message(s);
  if (w.kind() == shm::WorkerKind::Listener) {
    if (s.listener_done) return true;
    int fds[2] = {s.socket.get(), s.memfd.get()};
    return ipc::send_msg(w.channel(), &msg, sizeof msg, fds, 2);
  }
  if (s.uplink_done) return true;
  int fds[1] = {s.memfd.get()};
  return ipc::send_msg(w.channel(), &msg, sizeof msg, fds, 1);
}

void Supervisor::on_listener_readable(int fd, short, void* arg) {
  static_cast<Supervisor*>(arg)->accept_connections(fd);
}

void Supervisor::accept_connections(int listen_fd) {
  for (size_t i = 0; i < kMaxAcceptsPerWake && !shutting_down_; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    UniqueFd conn(::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                            SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED && errno != EINTR)
        log::warn("accept failed", {{"error", std::strerror(errno)}});
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;
    }
    sockaddr_storage local{};
    socklen_t local_len = sizeof local;
    ::getsockname(conn.get(), reinterpret_cast<sockaddr*>(&local), &local_len);
    Endpoint device = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&peer)).unmapped();
    Endpoint here = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&local)).unmapped();
    control_->counters.connections_accepted.fetch_add(1, std::memory_order_relaxed);

    if (deny_list_.denied(device, monotonic_ns())) {
      control_->counters.connections_denied.fetch_add(1, std::memory_order_relaxed);
      log::debug("closed a connection from a deny-listed device",
                 {{"peer-addr", device.to_string()}, {"local-addr", here.to_string()}});
      continue;  // conn closes here
    }
    std::string error;
    SupervisedSession* s = sessions_->open(std::move(conn), device, here, &error);
    if (!s) {
      control_->counters.connections_rejected.fetch_add(1, std::memory_order_relaxed);
      log::warn("refused a device connection", {{"peer-addr", device.to_string()},
                                                {"local-addr", here.to_string()},
                                                {"error", error}});
      continue;
    }
    log::info("accepted device connection", {{"peer-addr", device.to_string()},
                                             {"local-addr", here.to_string()},
                                             {"session-id", uuid_to_string(s->session_id)}});
    for (auto kind : {shm::WorkerKind::Listener, shm::WorkerKind::Uplink}) {
      WorkerProcess& w = worker(kind);
      if (!send_session(w, *s)) {
        log::error("cannot hand a session to a worker; restarting it",
                   {{"worker", ipc::worker_name(kind)}, {"error", std::strerror(errno)}});
        ::kill(w.pid(), SIGKILL);
      }
    }
  }
}

void Supervisor::on_channel_readable(int fd, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  for (auto& w : self->workers_) {
    if (w.running() && w.channel() == fd) {
      self->handle_worker_message(w);
      return;
    }
  }
}

void Supervisor::handle_worker_message(WorkerProcess& w) {
  const shm::WorkerKind kind = w.kind();
  auto kind_index = static_cast<uint32_t>(kind);
  for (int budget = 64; budget > 0 && w.running(); --budget) {
    ipc::Received msg = ipc::recv_msg(w.channel(), &kind, kind);
    switch (msg.status) {
      case ipc::Received::Status::Again:
        return;
      case ipc::Received::Status::Closed:
        // The process is exiting; SIGCHLD does the rest. Stop watching the
        // channel so a closed socket does not spin the loop.
        channel_events_[kind_index].reset();
        return;
      case ipc::Received::Status::Invalid:
        log::warn("dropped an invalid message from a worker",
                  {{"worker", ipc::worker_name(kind)}, {"error", msg.error}});
        continue;
      case ipc::Received::Status::Ok:
        break;
    }
    switch (msg.type()) {
      case ipc::MsgType::Ready:
        w.set_ready();
        control_->workers[kind_index].state.store(static_cast<uint32_t>(shm::WorkerState::Ready),
                                                  std::memory_order_relaxed);
        log::debug("worker ready", {{"worker", ipc::worker_name(kind)}, {"pid", w.pid()}});
        if (!all_ready_logged_ && worker(shm::WorkerKind::Listener).ready() &&
            worker(shm::WorkerKind::Uplink).ready() && worker(shm::WorkerKind::Admin).ready()) {
          all_ready_logged_ = true;
          log::info("all workers ready");
          systemd_.notify("READY=1\nSTATUS=relaying BGP sessions");
        }
        break;
      case ipc::MsgType::SessionDone:
        handle_session_done(w, msg.as<ipc::SessionDone>());
        break;
      case ipc::MsgType::DenyDevice:
        handle_deny(msg.as<ipc::DenyDevice>());
        break;
      case ipc::MsgType::Heartbeat:
        control_->workers[kind_index].heartbeat_mono_ns.store(monotonic_ns(),
                                                              std::memory_order_relaxed);
        break;
      default:
        break;  // recv_msg already refused types this worker may not send
    }
  }
}

void Supervisor::handle_session_done(WorkerProcess& w, const ipc::SessionDone& msg) {
  SupervisedSession* s = msg.slot < shm::kMaxSessions ? sessions_->find(msg.slot, msg.generation)
                                                      : nullptr;
  if (!s) {
    log::debug("session done for an unknown session",
               {{"worker", ipc::worker_name(w.kind())}, {"slot", msg.slot}});
    return;
  }
  auto reason = static_cast<ipc::SessionEnd>(msg.reason);
  std::string id = uuid_to_string(s->session_id);
  std::string peer = s->device.to_string();
  if (sessions_->mark_done(s, w.kind())) {
    control_->counters.sessions_closed.fetch_add(1, std::memory_order_relaxed);
    log::info("session closed", {{"session-id", id}, {"peer-addr", peer},
                                 {"reason", ipc::session_end_name(reason)},
                                 {"worker", ipc::worker_name(w.kind())}});
  }
}

void Supervisor::handle_deny(const ipc::DenyDevice& msg) {
  if (msg.device.family != AF_INET && msg.device.family != AF_INET6) {
    log::warn("dropped a deny-list request without an address");
    return;
  }
  deny_list_.add(msg.device, msg.ttl_seconds, monotonic_ns());
  control_->counters.deny_list_size.store(deny_list_.size(), std::memory_order_relaxed);
}

void Supervisor::on_signal(int sig, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  switch (sig) {
    case SIGCHLD:
      self->reap_children();
      break;
    case SIGTERM:
    case SIGINT:
      self->begin_shutdown();
      break;
    case SIGHUP:
      log::info("SIGHUP: nothing to reload; configuration comes from flags and environment");
      break;
  }
}

void Supervisor::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    for (auto& w : workers_) {
      if (w.pid() != pid) continue;
      auto kind = static_cast<uint32_t>(w.kind());
      channel_events_[kind].reset();
      w.exited();
      control_->workers[kind].state.store(static_cast<uint32_t>(shm::WorkerState::Down),
                                          std::memory_order_relaxed);
      control_->workers[kind].pid.store(0, std::memory_order_relaxed);
      if (shutting_down_) {
        log::info("worker stopped", {{"worker", ipc::worker_name(w.kind())}, {"pid", pid}});
      } else {
        log::error("worker died", {{"worker", ipc::worker_name(w.kind())},
                                   {"pid", pid},
                                   {"cause", describe_exit(status)}});
        schedule_restart(w);
      }
    }
  }
  if (shutting_down_) {
    bool any = false;
    for (auto& w : workers_) any = any || w.running();
    if (!any) event_base_loopexit(base_.get(), nullptr);
  }
}

void Supervisor::schedule_restart(WorkerProcess& w) {
  int64_t now = monotonic_ns();
  if (w.started_mono_ns && now - w.started_mono_ns > kStableRunNs) w.backoff_ms = 0;
  w.backoff_ms = w.backoff_ms == 0 ? kMinBackoffMs : std::min(w.backoff_ms * 2, kMaxBackoffMs);
  w.restart_at_mono_ns = now + w.backoff_ms * 1000000;
  ++w.restarts;
  control_->workers[static_cast<uint32_t>(w.kind())].restarts.store(w.restarts,
                                                                    std::memory_order_relaxed);
  log::info("worker restart scheduled", {{"worker", ipc::worker_name(w.kind())},
                                         {"in-ms", w.backoff_ms},
                                         {"restarts", w.restarts}});
}

void Supervisor::on_tick(int, short, void* arg) { static_cast<Supervisor*>(arg)->tick(); }

void Supervisor::tick() {
  int64_t now = monotonic_ns();
  control_->counters.deny_list_size.store(deny_list_.expire(now), std::memory_order_relaxed);
  if (shutting_down_) {
    if (now > shutdown_deadline_mono_ns_) {
      for (auto& w : workers_)
        if (w.running()) {
          log::warn("worker did not stop in time; killing it",
                    {{"worker", ipc::worker_name(w.kind())}});
          ::kill(w.pid(), SIGKILL);
        }
    }
    return;
  }
  // Pet systemd's watchdog only while every worker is alive and beating, so
  // a wedged worker that the restart logic cannot see still gets noticed.
  if (systemd_.watchdog_interval_ns() && workers_healthy(now) &&
      now - last_watchdog_mono_ns_ >= systemd_.watchdog_interval_ns() / 3) {
    last_watchdog_mono_ns_ = now;
    systemd_.notify("WATCHDOG=1");
  }
  for (auto& w : workers_)
    if (!w.running() && w.restart_at_mono_ns && now >= w.restart_at_mono_ns) {
      w.restart_at_mono_ns = 0;
      start_worker(w);
    }
}

bool Supervisor::workers_healthy(int64_t now) const {
  for (const auto& w : workers_) {
    if (!w.running() || !w.ready()) return false;
    const auto& status = control_->workers[static_cast<uint32_t>(w.kind())];
    if (now - status.heartbeat_mono_ns.load(std::memory_order_relaxed) > kHeartbeatFreshNs)
      return false;
  }
  return true;
}

void Supervisor::begin_shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  systemd_.notify("STOPPING=1");
  shutdown_deadline_mono_ns_ = monotonic_ns() + kShutdownGraceNs;
  log::info("shutting down");
  listen_events_.clear();
  listen_fds_.clear();
  auto msg = ipc::make<ipc::Shutdown>(ipc::MsgType::Shutdown);
  bool any = false;
  for (auto& w : workers_) {
    if (!w.running()) continue;
    any = true;
    if (!ipc::send_msg(w.channel(), &msg, sizeof msg)) ::kill(w.pid(), SIGTERM);
  }
  if (!any) event_base_loopexit(base_.get(), nullptr);
}

}  // namespace kbgp
