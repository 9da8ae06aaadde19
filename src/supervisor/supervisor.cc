#include "supervisor/supervisor.h"

#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
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
#include "common/log_ring.h"
#include "common/sandbox.h"
#include "common/sanitizer_options.h"
#include "common/timeutil.h"
#include "common/uuid.h"
#include "common/version.h"
#include "config.h"
#include "supervisor/deny_view.h"
#include "supervisor/listeners.h"
#include "supervisor/privileges.h"
#include "supervisor/restart_policy.h"

namespace kbgp {

namespace {

constexpr int kListenBacklog = 1024;
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
// the API token) is passed on. Not GRPC_TRACE: gRPC's tracers (http, for
// one) print request headers, the token among them, past our redaction.
std::vector<std::string> worker_environment() {
  static const char* kPassed[] = {"https_proxy", "HTTPS_PROXY", "http_proxy",     "HTTP_PROXY",
                                  "no_proxy",    "NO_PROXY",    "grpc_proxy",     "GRPC_VERBOSITY",
                                  "TZ"};
  std::vector<std::string> env;
  for (const char* name : kPassed) {
    const char* value = ::getenv(name);
    if (value) env.push_back(std::string(name) + "=" + value);
  }
  // Sanitizer builds only (docs/security.md, "Sanitizer builds"): what the
  // runtime cannot do under seccomp is switched off; empty otherwise.
  for (auto& assignment : sandboxed_sanitizer_environment()) env.push_back(std::move(assignment));
  return env;
}

}  // namespace

void Supervisor::EventDeleter::operator()(event* ev) const { event_free(ev); }
void Supervisor::BaseDeleter::operator()(event_base* base) const { event_base_free(base); }

Supervisor::Supervisor(Options options, EnvFileState env_file)
    : options_(std::move(options)), env_file_(std::move(env_file)) {
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

  // Log export: every process copies its lines into this ring and the
  // uplink sends them on (common/log_ring.h, docs/export.md).
  if (!options_.disable_log_export) {
    log_ring_fd_ = create_memfd("kbgp-log-ring", logring::kRegionBytes);
    SharedMapping ring = log_ring_fd_ ? SharedMapping::map(log_ring_fd_.get(),
                                                           logring::kRegionBytes, true)
                                      : SharedMapping();
    if (!ring) {
      log::error("cannot create the log ring", {{"error", std::strerror(errno)}});
      return 1;
    }
    logring::init(ring.as<logring::Region>());
    logring::attach_fd(log_ring_fd_.get());  // our own lines, for the rest of our life
  }

  shm::ConfigView& cfg = control_->config;
  uint8_t instance[16];
  uuid_v4(instance);
  copy_string(cfg.instance_id, sizeof cfg.instance_id, uuid_to_string(instance));
  copy_string(cfg.version, sizeof cfg.version, agent_version());
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
  spawn_env_.log_ring_fd = log_ring_fd_.get();
  spawn_env_.env = worker_environment();
  sessions_ = std::make_unique<SessionTable>(control_);

  if (options_.enable_md5) {
    // The capture socket needs CAP_NET_RAW: opened before the drop (the
    // capability stays only to reopen it).
    std::vector<int> fds;
    for (const auto& fd : listen_fds_) fds.push_back(fd.get());
    Md5Support::Hooks hooks;
    hooks.send_lookup = [this](const Endpoint& d, const Endpoint& l) {
      return send_md5_lookup(d, l);
    };
    hooks.denied = [this](const Endpoint& d) { return deny_list_.denied(d, monotonic_ns()); };
    md5_ = Md5Support::create(options_.md5_interface, fds, &control_->counters, std::move(hooks),
                              &error);
    if (!md5_) {
      log::error("cannot set up TCP-MD5 support", {{"error", error}});
      return 1;
    }
  }

  // Everything privileged is done: keep only what starting workers needs.
  PrivilegePlan plan{spawn_env_.switch_user, options_.enable_md5};
  std::vector<std::string> notes;
  if (!drop_supervisor_privileges(plan, &error, &notes)) {
    log::error("cannot drop the supervisor's privileges", {{"error", error}});
    return 1;
  }
  for (const auto& note : notes) log::warn(note);
  // Every path it was given is open by now; hold no directory of the
  // caller's (workers start in / as well).
  if (::chdir("/") != 0) {
    log::error("cannot change to /", {{"error", std::strerror(errno)}});
    return 1;
  }
  log::info("privileges dropped",
            {{"capabilities", capability_list(plan.switch_user
                                                  ? runtime_capabilities(plan.md5)
                                                  : std::vector<CapabilityNeed>{})}});
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
  watch_md5_capture();
  tick_event_.reset(event_new(base_.get(), -1, EV_PERSIST, &Supervisor::on_tick, this));
  timeval one_second{1, 0};
  event_add(tick_event_.get(), &one_second);

  for (auto& w : workers_) start_worker(w);
  std::string listeners;
  for (uint32_t i = 0; i < control_->config.listener_count; ++i)
    listeners += (i ? "," : "") + std::string(control_->config.listeners[i]);
  log::info("kbgp started", {{"version", agent_version()},
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
    up.log_export = log_ring_fd_ ? 1 : 0;
    copy_string(up.log_export_url, sizeof up.log_export_url, options_.log_export_url);
    copy_string(up.metrics_export_url, sizeof up.metrics_export_url, options_.metrics_export_url);
    int ca_fd = ca_file_.get();
    ok = ipc::send_msg(w.channel(), &up, sizeof up, &ca_fd, 1);
    std::memset(&up, 0, sizeof up);  // the token stays nowhere longer than needed
  }
  if (w.kind() != shm::WorkerKind::Admin) {
    drop_hand_offs(w);
    sessions_->for_each([&](SupervisedSession& s) {
      if (ok) ok = hand_off(w, s) != HandOff::Failed;
    });
  }
  if (!ok) {
    log::error("cannot initialise worker", {{"worker", ipc::worker_name(w.kind())},
                                            {"error", std::strerror(errno)}});
    signal_worker(w, SIGKILL);  // reaped and restarted through SIGCHLD
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

namespace {
// Room for one more message without blocking (POLLOUT on a unix socket:
// at least a quarter of the send buffer free).
bool channel_has_room(int fd) {
  pollfd p{fd, POLLOUT, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0;
}
}  // namespace

Supervisor::HandOff Supervisor::hand_off(WorkerProcess& w, const SupervisedSession& s) {
  if (!w.running()) return HandOff::Sent;  // handed over when it is back
  auto kind = static_cast<size_t>(w.kind());
  auto& backlog = hand_off_backlog_[kind];
  if (backlog.empty() && channel_has_room(w.channel()))
    return send_session(w, s) ? HandOff::Sent : HandOff::Failed;
  if (backlog.empty()) {
    // A flood pauses accepting thousands of times: one line per 10 s.
    ++hand_off_pauses_;
    int64_t now = monotonic_ns();
    if (now - hand_off_logged_ns_ >= 10'000'000'000) {
      log::warn("a worker is slow to take new sessions; accepting paused until it caught up",
                {{"worker", ipc::worker_name(w.kind())}, {"pauses", hand_off_pauses_}});
      hand_off_logged_ns_ = now;
      hand_off_pauses_ = 0;
    }
  }
  backlog.push_back({s.slot, s.generation});
  if (!channel_write_events_[kind])
    channel_write_events_[kind].reset(event_new(base_.get(), w.channel(), EV_WRITE,
                                                &Supervisor::on_channel_writable, this));
  event_add(channel_write_events_[kind].get(), nullptr);
  if (!accepting_paused_) {
    accepting_paused_ = true;
    for (auto& ev : listen_events_) event_del(ev.get());
  }
  return HandOff::Queued;
}

void Supervisor::on_channel_writable(int fd, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  for (auto& w : self->workers_)
    if (w.running() && w.channel() == fd) self->flush_hand_offs(w);
}

void Supervisor::flush_hand_offs(WorkerProcess& w) {
  auto kind = static_cast<size_t>(w.kind());
  auto& backlog = hand_off_backlog_[kind];
  while (!backlog.empty()) {
    if (!channel_has_room(w.channel())) {
      event_add(channel_write_events_[kind].get(), nullptr);
      return;
    }
    PendingHandOff next = backlog.front();
    backlog.pop_front();
    SupervisedSession* s = sessions_->find(next.slot, next.generation);
    if (!s) continue;
    if (!send_session(w, *s)) {
      log::error("cannot hand a session to a worker; restarting it",
                 {{"worker", ipc::worker_name(w.kind())}, {"error", std::strerror(errno)}});
      signal_worker(w, SIGKILL);
      return;
    }
  }
  log::debug("the worker took every waiting session; accepting again",
             {{"worker", ipc::worker_name(w.kind())}});
  resume_accepting_if_clear();
}

void Supervisor::drop_hand_offs(WorkerProcess& w) {
  auto kind = static_cast<size_t>(w.kind());
  hand_off_backlog_[kind].clear();
  channel_write_events_[kind].reset();
  resume_accepting_if_clear();
}

void Supervisor::resume_accepting_if_clear() {
  if (!accepting_paused_ || shutting_down_) return;
  for (const auto& backlog : hand_off_backlog_)
    if (!backlog.empty()) return;
  accepting_paused_ = false;
  for (auto& ev : listen_events_) event_add(ev.get(), nullptr);
}

void Supervisor::on_listener_readable(int fd, short, void* arg) {
  static_cast<Supervisor*>(arg)->accept_connections(fd);
}

void Supervisor::accept_connections(int listen_fd) {
  for (size_t i = 0; i < kMaxAcceptsPerWake && !shutting_down_ && !accepting_paused_; ++i) {
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
    bool md5 = md5_ && md5_->on_accept(device);
    std::string error;
    SupervisedSession* s = sessions_->open(std::move(conn), device, here, &error, md5);
    if (!s) {
      control_->counters.connections_rejected.fetch_add(1, std::memory_order_relaxed);
      log::warn("refused a device connection", {{"peer-addr", device.to_string()},
                                                {"local-addr", here.to_string()},
                                                {"error", error}});
      continue;
    }
    log::info("accepted device connection", {{"peer-addr", device.to_string()},
                                             {"local-addr", here.to_string()},
                                             {"session-id", uuid_to_string(s->session_id)},
                                             {"md5", md5 ? "yes" : "no"}});
    for (auto kind : {shm::WorkerKind::Listener, shm::WorkerKind::Uplink}) {
      WorkerProcess& w = worker(kind);
      if (hand_off(w, *s) == HandOff::Failed) {
        log::error("cannot hand a session to a worker; restarting it",
                   {{"worker", ipc::worker_name(kind)}, {"error", std::strerror(errno)}});
        signal_worker(w, SIGKILL);
      }
    }
  }
}

void Supervisor::on_md5_capture(int, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  if (self->md5_ && !self->shutting_down_) {
    self->md5_->on_capture_readable(monotonic_ns());
    if (self->md5_->capture_fd() < 0) self->md5_event_.reset();  // reopened by tick()
  }
}

void Supervisor::watch_md5_capture() {
  md5_event_.reset();
  if (!md5_ || md5_->capture_fd() < 0 || !base_) return;
  md5_event_.reset(event_new(base_.get(), md5_->capture_fd(), EV_READ | EV_PERSIST,
                             &Supervisor::on_md5_capture, this));
  event_add(md5_event_.get(), nullptr);
}

bool Supervisor::send_md5_lookup(const Endpoint& device, const Endpoint& local) {
  WorkerProcess& w = worker(shm::WorkerKind::Uplink);
  if (shutting_down_ || !w.running() || !w.ready()) return false;
  auto msg = ipc::make<ipc::Md5Lookup>(ipc::MsgType::Md5Lookup);
  msg.device = device;
  msg.local = local;
  return ipc::send_msg(w.channel(), &msg, sizeof msg);
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

void Supervisor::handle_worker_message(WorkerProcess& w, bool exited) {
  const shm::WorkerKind kind = w.kind();
  auto kind_index = static_cast<uint32_t>(kind);
  for (int burst = 64; burst > 0 && w.running(); --burst) {
    if (w.budget.paused) return;
    ipc::Received msg = ipc::recv_msg(w.channel(), &kind, kind);
    if (msg.status == ipc::Received::Status::Ok || msg.status == ipc::Received::Status::Invalid) {
      if (!w.budget.take() && !exited) pause_channel(w);
    }
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
        if (w.budget.violation() && !exited) {
          log::error("worker keeps breaking the channel protocol; restarting it",
                     {{"worker", ipc::worker_name(kind)}, {"pid", w.pid()},
                      {"invalid-messages", w.budget.violations}});
          signal_worker(w, SIGKILL);
          return;
        }
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
      case ipc::MsgType::AllowDevice:
        handle_allow(msg.as<ipc::AllowDevice>());
        break;
      case ipc::MsgType::InstallMd5Key:
        if (md5_) md5_->on_key_message(msg.as<ipc::InstallMd5Key>(), monotonic_ns());
        break;  // without --enable-md5-support no key is installed
      case ipc::MsgType::Heartbeat:
        control_->workers[kind_index].heartbeat_mono_ns.store(monotonic_ns(),
                                                              std::memory_order_relaxed);
        break;
      case ipc::MsgType::SyscallViolation: {
        // Logged with the death that follows (reap_children).
        const auto& report = msg.as<ipc::SyscallViolation>();
        w.reported_syscall = report.syscall;
        w.reported_arch = report.arch;
        break;
      }
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
  if (!deny_list_.add(msg.device, msg.ttl_seconds, monotonic_ns())) {
    log::warn("deny list full; device not deny-listed",
              {{"peer-addr", msg.device.unmapped().to_string()}, {"entries", deny_list_.size()}});
    return;
  }
  deny_list_changed();
}

void Supervisor::handle_allow(const ipc::AllowDevice& msg) {
  if (msg.device.family != AF_INET && msg.device.family != AF_INET6) {
    log::warn("dropped a deny-list lift without an address");
    return;
  }
  if (!deny_list_.remove(msg.device)) return;
  log::info("lifted a device's deny: the backend accepts it now",
            {{"device_ip", msg.device.unmapped().address_string()}});
  deny_list_changed();
}

void Supervisor::deny_list_changed() {
  control_->counters.deny_list_size.store(deny_list_.size(), std::memory_order_relaxed);
  publish_deny_list(deny_list_, &control_->deny_list, monotonic_ns(), realtime_ns());
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
      if (!self->shutting_down_) self->reload_env_file();
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
      // What it sent before it died (a SIGSYS handler's report, a last
      // SessionDone) is still queued on the channel.
      w.budget.paused = false;
      handle_worker_message(w, true);
      channel_events_[kind].reset();
      drop_hand_offs(w);  // its channel is gone; start_worker sends them all
      bool seccomp = WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
      std::string syscall = !seccomp ? ""
                            : w.reported_syscall >= 0
                                ? syscall_name(w.reported_syscall, w.reported_arch)
                                : "not reported (see the kernel log, audit type=1326)";
      w.exited();
      control_->workers[kind].state.store(static_cast<uint32_t>(shm::WorkerState::Down),
                                          std::memory_order_relaxed);
      control_->workers[kind].pid.store(0, std::memory_order_relaxed);
      if (shutting_down_ && !seccomp) {
        log::info("worker stopped", {{"worker", ipc::worker_name(w.kind())}, {"pid", pid}});
      } else if (seccomp) {
        log::error("worker died", {{"worker", ipc::worker_name(w.kind())},
                                   {"pid", pid},
                                   {"cause", describe_exit(status)},
                                   {"syscall", syscall}});
        if (!shutting_down_) schedule_restart(w);
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
  auto kind = static_cast<uint32_t>(w.kind());
  RestartPolicy::Verdict verdict = restart_policies_[kind].on_death(w.started_mono_ns, now);
  if (verdict.give_up) {
    log::error("worker crash loop: it was restarted too often, giving up; kbgp exits",
               {{"worker", ipc::worker_name(w.kind())},
                {"restarts", verdict.recent},
                {"within-s", RestartPolicy::kCrashLoopWindowNs / 1000000000},
                {"exit-code", RestartPolicy::kCrashLoopExitCode}});
    exit_code_ = RestartPolicy::kCrashLoopExitCode;
    w.restart_at_mono_ns = 0;
    begin_shutdown();
    return;
  }
  w.backoff_ms = verdict.delay_ns / 1000000;
  w.restart_at_mono_ns = now + verdict.delay_ns;
  ++w.restarts;
  control_->workers[kind].restarts.store(w.restarts, std::memory_order_relaxed);
  log::info("worker restart scheduled", {{"worker", ipc::worker_name(w.kind())},
                                         {"in-ms", w.backoff_ms},
                                         {"restarts", w.restarts},
                                         {"restarts-last-60s", verdict.recent}});
  // On time, not at the next one-second tick: sessions wait for it.
  timeval delay{static_cast<time_t>(verdict.delay_ns / 1000000000),
                static_cast<suseconds_t>(verdict.delay_ns % 1000000000 / 1000)};
  event_base_once(base_.get(), -1, EV_TIMEOUT, &Supervisor::on_restart_due, this, &delay);
}

void Supervisor::on_restart_due(int, short, void* arg) {
  // libevent's timers run on a coarse clock (a few ms): this one may fire
  // just before restart_at by our clock, and must not leave the restart to
  // the next one-second tick.
  constexpr int64_t kTimerSlackNs = 20'000'000;
  static_cast<Supervisor*>(arg)->start_due_workers(monotonic_ns() + kTimerSlackNs);
}

void Supervisor::start_due_workers(int64_t now) {
  if (shutting_down_) return;
  for (auto& w : workers_)
    if (!w.running() && w.restart_at_mono_ns && now >= w.restart_at_mono_ns) {
      w.restart_at_mono_ns = 0;
      start_worker(w);
    }
}

void Supervisor::on_tick(int, short, void* arg) { static_cast<Supervisor*>(arg)->tick(); }

void Supervisor::tick() {
  int64_t now = monotonic_ns();
  for (auto& w : workers_) {
    bool was_paused = w.budget.paused;
    w.budget.left = ChannelBudget::kMessagesPerSecond;
    w.budget.paused = false;
    auto& ev = channel_events_[static_cast<uint32_t>(w.kind())];
    if (was_paused && w.running() && ev) event_add(ev.get(), nullptr);
  }
  size_t denied_before = deny_list_.size();
  if (deny_list_.expire(now) != denied_before) deny_list_changed();
  if (md5_ && md5_->tick(now)) watch_md5_capture();
  if (shutting_down_) {
    if (now > shutdown_deadline_mono_ns_) {
      for (auto& w : workers_)
        if (w.running()) {
          log::warn("worker did not stop in time; killing it",
                    {{"worker", ipc::worker_name(w.kind())}});
          signal_worker(w, SIGKILL);
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
  start_due_workers(now);
}

void Supervisor::pause_channel(WorkerProcess& w) {
  if (w.budget.paused) return;
  w.budget.paused = true;
  auto& ev = channel_events_[static_cast<uint32_t>(w.kind())];
  if (ev) event_del(ev.get());
  log::warn("worker sends more messages than it may; reading its channel pauses until the "
            "next second",
            {{"worker", ipc::worker_name(w.kind())},
             {"per-second", ChannelBudget::kMessagesPerSecond}});
}

void Supervisor::signal_worker(WorkerProcess& w, int sig) {
  if (!w.send_signal(sig, spawn_env_))
    log::error("cannot signal worker", {{"worker", ipc::worker_name(w.kind())},
                                        {"pid", w.pid()},
                                        {"signal", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?"},
                                        {"error", std::strerror(errno)}});
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
  md5_event_.reset();
  listen_fds_.clear();
  auto msg = ipc::make<ipc::Shutdown>(ipc::MsgType::Shutdown);
  bool any = false;
  for (auto& w : workers_) {
    if (!w.running()) continue;
    any = true;
    if (!ipc::send_msg(w.channel(), &msg, sizeof msg)) signal_worker(w, SIGTERM);
  }
  if (!any) event_base_loopexit(base_.get(), nullptr);
}

}  // namespace kbgp
