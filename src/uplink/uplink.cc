#include "uplink/uplink.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
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

bool same_id(const uint8_t a[16], const uint8_t b[16]) { return std::memcmp(a, b, 16) == 0; }
}  // namespace

Uplink::Uplink(WorkerContext& ctx, UplinkConfig config, ChannelFactory factory)
    : ctx_(ctx),
      config_(std::move(config)),
      factory_(std::move(factory)),
      pool_(factory_, config_.multi, &ctx.control->counters) {
  wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  control_ = std::make_shared<ControlClient>(factory_, config_, ctx.control,
                                             [this] { eventfd_signal(wake_.get()); });
  env_.control = ctx.control;
  env_.down_ready_fd = ipc::kDownReadyFd;
  env_.config = &config_;
  env_.pool = &pool_;
  env_.control_client = control_.get();
  env_.denied = [this](const DenyNotice& n) { post([this, n] { on_denied(n); }); };
  env_.ended = [this](uint32_t slot, uint32_t generation, ipc::SessionEnd reason) {
    post([=, this] { on_session_ended(slot, generation, reason); });
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
      next_heartbeat = now + kHeartbeatNs;
    }
    int64_t next = std::min(next_heartbeat, control_->tick(now));
    if (stopping_) {
      if (stopped_cleanly()) return 0;
      if (now >= stop_deadline_ns_) {
        log::warn("streams still open at exit", {{"reactors", g_live_reactors.load()}});
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
  return sessions_.empty() && !control_->stream_alive() && g_live_reactors.load() == 0;
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
      default:
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
  // Once per deny period and device, as the vendor's agent does (several
  // sessions may have been accepted before the supervisor got the deny).
  std::string ip = notice.device.unmapped().address_string();
  int64_t now = monotonic_ns();
  for (auto it = deny_logged_until_.begin(); it != deny_logged_until_.end();)
    it = it->second <= now ? deny_logged_until_.erase(it) : std::next(it);
  if (deny_logged_until_.count(ip)) return;
  deny_logged_until_[ip] = now + static_cast<int64_t>(notice.ttl_seconds) * 1'000'000'000;
  log::info("Deny-listed an INVALID / UNKNOWN device",
            {{"device_ip", ip},
             {"local-addr", notice.local.unmapped().to_string()},
             {"peer-addr", notice.device.unmapped().to_string()},
             {"sessid", notice.session_id},
             {"ttl_counter", notice.ttl_counter},
             {"ttl_seconds", notice.ttl_seconds}});
}

}  // namespace kbgp::uplink
