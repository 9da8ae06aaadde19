#include "uplink/uplink.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <limits>

#include "common/layout.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/uuid.h"

namespace kbgp::uplink {

namespace {
constexpr int64_t kHeartbeatNs = 1'000'000'000;
constexpr int64_t kStopGraceNs = 5'000'000'000;
constexpr uint64_t kTagChannel = 1, kTagUpReady = 2, kTagWake = 3;
constexpr uint32_t kDefaultDenySeconds = 1200;  // BLOCK_IP without a ttl

// Whether the supervisor's deny-list (its copy in the control region) may
// hold `device`: true when listed, when the copy is being rewritten, or
// when the list is longer than the copy. Pushed accepting answers arrive
// for many devices (e.g. every key refresh); only these need an AllowDevice.
bool maybe_deny_listed(const shm::DenyListView& view, const Endpoint& device) {
  uint32_t before = view.seq.load(std::memory_order_acquire);
  if (before & 1) return true;
  uint32_t count = std::min(view.count, shm::kDenyViewEntries);
  bool found = view.total > count;
  for (uint32_t i = 0; i < count && !found; ++i)
    found = view.entries[i].device.same_address(device);
  std::atomic_thread_fence(std::memory_order_acquire);
  return found || view.seq.load(std::memory_order_relaxed) != before;
}

bool same_id(const uint8_t a[16], const uint8_t b[16]) { return std::memcmp(a, b, 16) == 0; }

// SIGTERM/SIGINT (also what the kernel sends when the supervisor dies,
// PR_SET_PDEATHSIG): end every session with a KILL, then exit. Whichever
// thread takes the signal only sets the flag and wakes the event thread.
std::atomic<bool> g_stop_signal{false};
std::atomic<int> g_wake_fd{-1};
extern "C" void on_stop_signal(int) {
  g_stop_signal.store(true);
  int fd = g_wake_fd.load();
  if (fd >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
  }
}
}  // namespace

Uplink::Uplink(WorkerContext& ctx, UplinkConfig config, ChannelFactory factory)
    : ctx_(ctx),
      config_(std::move(config)),
      factory_(std::move(factory)),
      pool_(factory_, config_.multi, &ctx.control->counters) {
  wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  control_ = std::make_shared<ControlClient>(
      factory_, config_, ctx.control, stream_queue_, [this] { eventfd_signal(wake_.get()); },
      [this](const ControlAnswer& a) { post([this, a] { on_pushed(a); }); });
  Md5Relay::Hooks md5_hooks;
  md5_hooks.send = [this](const void* msg, size_t len) {
    return channel_open_ && ipc::send_msg(ctx_.channel.get(), msg, len);
  };
  md5_hooks.post = [this](std::function<void()> task) { post(std::move(task)); };
  md5_hooks.deny = [this](const Endpoint& device, const Endpoint& local, uint32_t ttl_seconds,
                          uint32_t ttl_counter) {
    DenyNotice notice;
    notice.device = device;
    notice.local = local;
    notice.ttl_seconds = ttl_seconds;
    notice.ttl_counter = ttl_counter;
    notice.slot = shm::kMaxSessions;  // a SYN asked, no session
    on_denied(notice);
  };
  md5_ = std::make_shared<Md5Relay>(ctx.control->config.md5_enabled != 0, control_.get(),
                                    std::move(md5_hooks));
  control_->set_key_callback([this](KeyNotice& notice) {
    // One copy crosses to the event thread; the relay wipes it there.
    auto copy = std::make_shared<KeyNotice>(notice);
    post([this, copy] { md5_->on_key_notice(*copy); });
  });
  env_.control = ctx.control;
  env_.down_ready_fd = ipc::kDownReadyFd;
  env_.config = &config_;
  env_.pool = &pool_;
  env_.stream_queue = &stream_queue_;
  env_.control_client = control_.get();
  env_.denied = [this](const DenyNotice& n) { post([this, n] { on_denied(n); }); };
  env_.ended = [this](uint32_t slot, uint32_t generation, ipc::SessionEnd reason) {
    post([=, this] { on_session_ended(slot, generation, reason); });
  };
  env_.wake_at = [this](uint32_t slot, uint32_t generation, int64_t at_ns) {
    post([=, this] { wake_at(slot, generation, at_ns); });
  };
}

Uplink::~Uplink() {
  sessions_.clear();
  run_posted();  // drop hand-offs that hold references
}

bool Uplink::setup_epoll() {
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_ || !wake_) {
    log::error("cannot create epoll/eventfd", {{"error", std::strerror(errno)}});
    return false;
  }
  auto add = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0) return true;
    log::error("epoll_ctl failed", {{"fd", fd}, {"error", std::strerror(errno)}});
    return false;
  };
  return add(ctx_.channel.get(), kTagChannel) && add(ipc::kUpReadyFd, kTagUpReady) &&
         add(wake_.get(), kTagWake);
}

int Uplink::run() {
  if (!setup_epoll()) return 1;
  g_wake_fd.store(wake_.get());
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  control_->tick(monotonic_ns());  // opens the Control stream
  if (!ctx_.send_ready()) {
    log::error("cannot send Ready to the supervisor", {{"error", std::strerror(errno)}});
    return 1;
  }
  log::info("uplink ready", {{"target", config_.target},
                             {"tls", config_.insecure ? "off" : "on"},
                             {"multi", config_.multi},
                             {"site_id", config_.agent.site_id}});
  int64_t next_heartbeat = monotonic_ns();
  for (;;) {
    int64_t now = monotonic_ns();
    if (now >= next_heartbeat) {
      ctx_.heartbeat();
      for (auto& [slot, session] : sessions_) session->tick(now);
      pool_.collect_idle();
      md5_->tick(now);
      next_heartbeat = now + kHeartbeatNs;
    }
    if (g_stop_signal.load() && !stopping_) begin_stop("signal received");
    int64_t next = std::min({next_heartbeat, control_->tick(now), run_timers(now)});
    if (stopping_) {
      if (stopped_cleanly()) return 0;
      if (now >= stop_deadline_ns_) {
        log::warn("streams still open at exit", {{"streams", g_live_streams.load()}});
        return 0;
      }
      next = std::min(next, stop_deadline_ns_);
    }
    int timeout_ms = static_cast<int>(
        std::clamp<int64_t>((next - monotonic_ns() + 999'999) / 1'000'000, 0, 1000));
    epoll_event events[8];
    int n = ::epoll_wait(epoll_.get(), events, 8, timeout_ms);
    if (n < 0 && errno != EINTR) {
      log::error("epoll_wait failed", {{"error", std::strerror(errno)}});
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      switch (events[i].data.u64) {
        case kTagChannel: on_channel(); break;
        case kTagUpReady: on_up_ready(); break;
        case kTagWake: eventfd_drain(wake_.get()); break;
      }
    }
    run_posted();
  }
}

bool Uplink::stopped_cleanly() const {
  return sessions_.empty() && !control_->stream_alive() && g_live_streams.load() == 0;
}

void Uplink::begin_stop(const char* why) {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ns_ = monotonic_ns() + kStopGraceNs;
  log::info("uplink stopping", {{"reason", why}, {"sessions", sessions_.size()}});
  control_->shutdown();
  for (auto& [slot, session] : sessions_) session->abort();
}

// ---- supervisor channel -------------------------------------------------------

void Uplink::on_channel() {
  for (;;) {
    ipc::Received msg = ipc::recv_msg(ctx_.channel.get(), nullptr, shm::WorkerKind::Uplink);
    switch (msg.status) {
      case ipc::Received::Status::Again:
        return;
      case ipc::Received::Status::Closed:
        // The supervisor is gone: nobody to report to. Stop watching the
        // socket (it would stay readable forever) and wind down.
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, ctx_.channel.get(), nullptr);
        channel_open_ = false;
        begin_stop("supervisor channel closed");
        return;
      case ipc::Received::Status::Invalid:
        log::error("invalid message from the supervisor", {{"error", msg.error}});
        continue;
      case ipc::Received::Status::Ok:
        break;
    }
    switch (msg.type()) {
      case ipc::MsgType::AddSession:
        if (stopping_) {
          const auto& add = msg.as<ipc::AddSession>();
          send_session_done(add.slot, add.generation, ipc::SessionEnd::UplinkError);
        } else {
          on_add_session(msg);
        }
        break;
      case ipc::MsgType::Shutdown:
        begin_stop("shutdown requested");
        break;
      case ipc::MsgType::Md5Lookup:
        if (!stopping_) md5_->on_lookup(msg.as<ipc::Md5Lookup>(), monotonic_ns());
        break;
      default:
        if (handle_common_message(msg)) break;  // common/worker.h
        log::warn("unexpected message from the supervisor",
                  {{"type", static_cast<int>(msg.type())}});
        break;
    }
  }
}

void Uplink::on_add_session(ipc::Received& msg) {
  const auto add = msg.as<ipc::AddSession>();
  UniqueFd memfd = std::move(msg.fds.at(0));
  auto refuse = [&](const char* why) {
    log::error("refusing session", {{"slot", add.slot}, {"generation", add.generation},
                                    {"reason", why}});
    send_session_done(add.slot, add.generation, ipc::SessionEnd::Invalid);
  };
  if (add.slot >= shm::kMaxSessions) return refuse("slot out of range");
  if (sessions_.count(add.slot)) return refuse("slot already in use");
  long long size = fd_size(memfd.get());
  if (size < static_cast<long long>(shm::kSessionRegionSize))
    return refuse("session region missing or too small");
  SharedMapping map = SharedMapping::map(memfd.get(), shm::kSessionRegionSize, true);
  if (!map) return refuse("cannot map the session region");
  memfd.reset();  // the mapping keeps the memory
  auto* region = map.as<shm::SessionRegion>();
  if (!shm::valid_session(region, map.size()))
    return refuse("session region has an unknown layout");
  if (region->header.slot != add.slot || region->header.generation != add.generation ||
      !same_id(region->header.session_id, add.session_id))
    return refuse("session region does not match the message");
  const shm::SessionSlot& slot = ctx_.control->sessions[add.slot];
  if (slot.state.load(std::memory_order_acquire) == static_cast<uint32_t>(shm::SlotState::Closing) &&
      slot.generation.load(std::memory_order_acquire) == add.generation &&
      same_id(slot.session_id, add.session_id)) {
    // The listener let go before we got here: the device reset or broke
    // its framing at once (the listener is done first only on an abort),
    // so there is nothing to relay. Common in a burst of short
    // connections; not an error.
    log::debug("session ended before the uplink took it",
               {{"slot", add.slot}, {"session-id", uuid_to_string(add.session_id)}});
    send_session_done(add.slot, add.generation, ipc::SessionEnd::DeviceError);
    return;
  }
  if (slot.state.load(std::memory_order_acquire) != static_cast<uint32_t>(shm::SlotState::Active) ||
      slot.generation.load(std::memory_order_acquire) != add.generation ||
      !same_id(slot.session_id, add.session_id))
    return refuse("control region slot does not match the message");
  if (add.device.family != AF_INET && add.device.family != AF_INET6)
    return refuse("device address family unknown");

  SessionIdentity id;
  id.slot = add.slot;
  id.generation = add.generation;
  id.session_id = uuid_to_string(add.session_id);
  id.device = add.device;
  id.local = add.local;
  auto session = std::make_shared<Session>(env_, id, std::move(map));
  sessions_[add.slot] = session;

  DeviceQuery query;
  query.device_ip = add.device.unmapped().address_string();
  query.device_port = add.device.port;
  query.proxy_ip = add.local.unmapped().address_string();
  query.proxy_port = add.local.port;
  std::weak_ptr<Session> weak = session;
  auto cached = control_->lookup(query, [weak](const ControlAnswer* answer,
                                               const std::string& error) {
    if (auto s = weak.lock()) answer ? s->on_control_answer(*answer) : s->on_control_failure(error);
  });
  if (cached) session->on_control_answer(*cached);
}

void Uplink::wake_at(uint32_t slot, uint32_t generation, int64_t at_ns) {
  wakes_.push(Wake{at_ns, slot, generation});
}

int64_t Uplink::run_timers(int64_t now_ns) {
  while (!wakes_.empty() && wakes_.top().at_ns <= now_ns) {
    Wake w = wakes_.top();
    wakes_.pop();
    auto it = sessions_.find(w.slot);
    if (it != sessions_.end() && it->second->identity().generation == w.generation)
      it->second->tick(now_ns);
  }
  return wakes_.empty() ? std::numeric_limits<int64_t>::max() : wakes_.top().at_ns;
}

void Uplink::on_up_ready() {
  eventfd_drain(ipc::kUpReadyFd);
  shm::drain_pending(ctx_.control->up_pending, [&](uint32_t slot) {
    auto it = sessions_.find(slot);
    if (it != sessions_.end()) it->second->pump();
  });
}

// ---- hand-offs from gRPC threads ------------------------------------------------

void Uplink::post(std::function<void()> task) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(task));
  }
  eventfd_signal(wake_.get());
}

void Uplink::run_posted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(posted_mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
}

void Uplink::on_session_ended(uint32_t slot, uint32_t generation, ipc::SessionEnd reason) {
  auto it = sessions_.find(slot);
  if (it == sessions_.end() || it->second->identity().generation != generation) return;
  // Drop the session (and its mapping) before the supervisor may reuse
  // the slot.
  sessions_.erase(it);
  send_session_done(slot, generation, reason);
}

void Uplink::send_session_done(uint32_t slot, uint32_t generation, ipc::SessionEnd reason) {
  if (!channel_open_) return;
  auto done = ipc::make<ipc::SessionDone>(ipc::MsgType::SessionDone);
  done.slot = slot;
  done.generation = generation;
  done.reason = static_cast<uint32_t>(reason);
  if (!ipc::send_msg(ctx_.channel.get(), &done, sizeof done))
    log::error("cannot send SessionDone", {{"slot", slot}, {"error", std::strerror(errno)}});
}

void Uplink::on_denied(const DenyNotice& notice) {
  if (channel_open_) {
    auto deny = ipc::make<ipc::DenyDevice>(ipc::MsgType::DenyDevice);
    deny.device = notice.device;
    deny.ttl_seconds = notice.ttl_seconds;
    deny.ttl_counter = notice.ttl_counter;
    deny.slot = notice.slot;
    deny.generation = notice.generation;
    if (!ipc::send_msg(ctx_.channel.get(), &deny, sizeof deny))
      log::error("cannot send DenyDevice", {{"error", std::strerror(errno)}});
  }
  // BLOCK_IP blocks every connection from the device: the ones still
  // relayed end too (the one that asked is done already).
  for (auto& [slot, session] : sessions_)
    if (session->identity().device.same_address(notice.device)) session->deny();

  // Once per deny period and device, as the vendor's agent does (several
  // sessions may have been accepted before the supervisor got the deny).
  std::string ip = notice.device.unmapped().address_string();
  int64_t now = monotonic_ns();
  for (auto it = deny_logged_until_.begin(); it != deny_logged_until_.end();)
    it = it->second <= now ? deny_logged_until_.erase(it) : std::next(it);
  if (deny_logged_until_.count(ip)) return;
  // The supervisor takes ttl 0 as the interface's 1200 s; so does the log.
  uint32_t period_s = notice.ttl_seconds ? notice.ttl_seconds : kDefaultDenySeconds;
  deny_logged_until_[ip] = now + static_cast<int64_t>(period_s) * 1'000'000'000;
  auto address = [](const Endpoint& e) { return e.family ? e.unmapped().to_string() : ""; };
  log::info("Deny-listed an INVALID / UNKNOWN device",
            {{"device_ip", ip},
             {"local-addr", address(notice.local)},
             {"peer-addr", address(notice.device)},
             {"sessid", notice.session_id},
             {"ttl_counter", notice.ttl_counter},
             {"ttl_seconds", notice.ttl_seconds}});
}

void Uplink::on_pushed(const ControlAnswer& answer) {
  auto device = Endpoint::parse_address(answer.device_ip);
  if (!device) {
    log::warn("pushed Control answer without a usable device_ip",
              {{"device_ip", answer.device_ip}});
    return;
  }
  device->port = static_cast<uint16_t>(answer.device_port);
  std::string ip = device->unmapped().address_string();
  if (!answer.blocked()) {
    // Deny-listed (by us, or by the uplink before a restart: the
    // supervisor's list is in the control region): the backend accepts it
    // again, so its next connection is let in, and a later block is logged
    // again.
    auto it = deny_logged_until_.find(ip);
    bool ours = it != deny_logged_until_.end() && it->second > monotonic_ns();
    if (it != deny_logged_until_.end()) deny_logged_until_.erase(it);
    if (ours || maybe_deny_listed(ctx_.control->deny_list, *device)) send_allow(*device);
    return;
  }
  DenyNotice notice;
  notice.device = *device;
  if (auto local = Endpoint::parse_address(answer.proxy_ip)) {
    notice.local = *local;
    notice.local.port = static_cast<uint16_t>(answer.proxy_port);
  }
  notice.ttl_seconds = answer.ttl_seconds;
  notice.ttl_counter = answer.ttl_counter;
  notice.slot = shm::kMaxSessions;  // no session asked
  // The log line names a live session of the device, if there is one.
  for (auto& [slot, session] : sessions_) {
    const SessionIdentity& id = session->identity();
    if (!id.device.same_address(*device)) continue;
    notice.device = id.device;
    notice.local = id.local;
    notice.session_id = id.session_id;
    notice.slot = id.slot;
    notice.generation = id.generation;
    break;
  }
  on_denied(notice);
}

void Uplink::send_allow(const Endpoint& device) {
  if (!channel_open_) return;
  auto allow = ipc::make<ipc::AllowDevice>(ipc::MsgType::AllowDevice);
  allow.device = device;
  allow.device.port = 0;
  if (!ipc::send_msg(ctx_.channel.get(), &allow, sizeof allow))
    log::error("cannot send AllowDevice", {{"error", std::strerror(errno)}});
}

}  // namespace kbgp::uplink
