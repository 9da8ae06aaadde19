#include "listener/listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "common/log.h"
#include "common/timeutil.h"
#include "common/uuid.h"
#include "config.h"
#include "listener/tcp_accounting.h"

namespace kbgp::listener {

namespace {

constexpr int kChannelBatch = 64;  // messages per channel wake-up, for fairness

// How long a device may leave a started BGP message unfinished: its OPEN's
// hold time (a speaker must send something at least that often, and its
// peer's hold timer would expire anyway, since the keepalives queue behind
// the unfinished message), at most 240 s (RFC 4271's suggested hold time
// before the OPEN, and more than any real link needs for 64 KiB); 240 s
// before the OPEN or with hold time 0.
constexpr int64_t kIncompleteMessageMaxNs = 240'000'000'000;
int64_t incomplete_message_limit_ns(uint32_t hold_time_s) {
  int64_t hold = int64_t{hold_time_s} * 1'000'000'000;
  return hold > 0 && hold < kIncompleteMessageMaxNs ? hold : kIncompleteMessageMaxNs;
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

#ifdef KBGP_TEST_TRIGGERS
// Test-only crash points (./configure --enable-test-triggers): SIGUSR1 makes
// the listener die right after its next device read, before recording it;
// SIGURG right after its next device write, before recording it. The two
// windows a restarted listener settles from the kernel's byte counts
// (tests/e2e/test_restart_workers.py).
volatile sig_atomic_t g_crash_after_read = 0;
volatile sig_atomic_t g_crash_after_write = 0;
void arm_crash_after_read(int) { g_crash_after_read = 1; }
void arm_crash_after_write(int) { g_crash_after_write = 1; }
void crash_point(volatile sig_atomic_t& armed) {
  if (!armed) return;
  static const char kMsg[] = "test trigger: listener dies at a crash point\n";
  ssize_t ignored = ::write(2, kMsg, sizeof kMsg - 1);
  (void)ignored;
  ::_exit(99);
}
#define KBGP_CRASH_POINT(flag) crash_point(flag)
#else
#define KBGP_CRASH_POINT(flag) ((void)0)
#endif

// Makes the connection's last close abortive (RST). Our close is not the
// last one: the supervisor keeps a duplicate of every device socket, and
// closes it as soon as we report the session done. (connect(AF_UNSPEC)
// would reset at once, but the seccomp policy keeps connect out of reach.)
void reset_connection(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

}  // namespace

struct Listener::Session {
  Listener* owner = nullptr;
  uint32_t slot = 0;
  uint32_t generation = 0;
  std::string peer_addr;
  std::string local_addr;
  std::string session_id;
  UniqueFd sock;
  SharedMapping mapping;
  shm::SessionSlot* view = nullptr;  // this session's slot in the control region
  RingProducer up;
  RingConsumer down;
  // Both keep their state in the session region (a restart loses nothing).
  std::optional<FrameAssembler> assembler;
  std::optional<DownFraming> down_framing;
  EventPtr read_ev;
  EventPtr write_ev;
  bool reading = false;        // read_ev is added
  bool waiting_space = false;  // reading paused until the up ring has room
  bool device_eof = false;
  bool up_closed = false;
  bool ended = false;
  uint64_t msgs_up = 0;
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  uint64_t msgs_down_published = 0;
  uint64_t up_taken_at_tick = 0;  // for release_idle_up_rings
  // For end_stalled_messages: the up-ring position where the unfinished
  // message starts, and since when (monotonic; 0 = nothing unfinished).
  uint64_t stalled_at_pos = 0;
  int64_t stalled_since_ns = 0;
  bool up_dirty = false;          // up ring written since its pages were released

  log::Field peer() const { return {"peer-addr", peer_addr}; }
  log::Field local() const { return {"local-addr", local_addr}; }
  log::Field sid() const { return {"session-id", session_id}; }
};

Listener::Listener(event_base* base, WorkerContext& ctx, int up_ready_fd, int down_ready_fd)
    : base_(base),
      ctx_(ctx),
      control_(ctx.control),
      up_ready_fd_(up_ready_fd),
      down_ready_fd_(down_ready_fd) {
  ended_.reserve(64);
}

Listener::~Listener() = default;

bool Listener::start() {
  // Both eventfds are read only when libevent says they are readable, but a
  // blocking read of a drained eventfd would hang the whole worker.
  for (int fd : {up_ready_fd_, down_ready_fd_}) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      log::error("wake-up eventfd unusable", {{"fd", fd}, {"error", std::strerror(errno)}});
      return false;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
#ifdef KBGP_TEST_TRIGGERS
  ::signal(SIGUSR1, arm_crash_after_read);
  ::signal(SIGURG, arm_crash_after_write);
#endif

  channel_ev_.reset(event_new(base_, ctx_.channel.get(), EV_READ | EV_PERSIST, channel_cb, this));
  down_ready_ev_.reset(event_new(base_, down_ready_fd_, EV_READ | EV_PERSIST, down_ready_cb, this));
  heartbeat_ev_.reset(event_new(base_, -1, EV_PERSIST, heartbeat_cb, this));
  sigterm_ev_.reset(evsignal_new(base_, SIGTERM, signal_cb, this));
  sigint_ev_.reset(evsignal_new(base_, SIGINT, signal_cb, this));
  timeval second{1, 0};
  if (!channel_ev_ || !down_ready_ev_ || !heartbeat_ev_ || !sigterm_ev_ || !sigint_ev_ ||
      event_add(channel_ev_.get(), nullptr) != 0 || event_add(down_ready_ev_.get(), nullptr) != 0 ||
      event_add(heartbeat_ev_.get(), &second) != 0 || event_add(sigterm_ev_.get(), nullptr) != 0 ||
      event_add(sigint_ev_.get(), nullptr) != 0) {
    log::error("cannot register the listener's events");
    return false;
  }
  return true;
}

void Listener::run() {
  // EVLOOP_ONCE returns after one batch of active callbacks; the wake-up for
  // the uplink is sent after the batch, once for all sessions in it.
  while (!stopping_) {
    if (event_base_loop(base_, EVLOOP_ONCE) < 0) {
      log::error("event loop failed");
      break;
    }
    after_iteration();
  }
  after_iteration();
}

void Listener::after_iteration() {
  if (uplink_signal_due_) {
    uplink_signal_due_ = false;
    eventfd_signal(up_ready_fd_);
  }
  ended_.clear();
}

void Listener::stop() {
  stopping_ = true;
  event_base_loopbreak(base_);
}

void Listener::wake_uplink(uint32_t slot) {
  shm::mark_pending(control_->up_pending, slot);
  uplink_signal_due_ = true;
}

void Listener::channel_cb(evutil_socket_t, short, void* arg) {
  static_cast<Listener*>(arg)->on_channel();
}
void Listener::down_ready_cb(evutil_socket_t, short, void* arg) {
  static_cast<Listener*>(arg)->on_down_ready();
}
void Listener::heartbeat_cb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Listener*>(arg);
  self->ctx_.heartbeat();
  self->release_idle_up_rings();
  self->end_stalled_messages();
}

void Listener::end_stalled_messages() {
  int64_t now = monotonic_ns();
  for (auto& sp : sessions_) {
    if (!sp || sp->ended || !sp->assembler) continue;
    Session& s = *sp;
    if (s.assembler->staged() == 0 || s.waiting_space || s.device_eof) {
      s.stalled_since_ns = 0;
      continue;
    }
    uint64_t at = s.up.write_pos();
    if (s.stalled_since_ns == 0 || s.stalled_at_pos != at) {  // a new unfinished message
      s.stalled_at_pos = at;
      s.stalled_since_ns = now;
      continue;
    }
    uint32_t hold = s.view->hold_time.load(std::memory_order_relaxed);
    if (now - s.stalled_since_ns <= incomplete_message_limit_ns(hold)) continue;
    log::warn("device left a BGP message unfinished too long",
              {s.peer(), s.local(), s.sid(), {"staged-bytes", s.assembler->staged()},
               {"seconds", (now - s.stalled_since_ns) / 1'000'000'000},
               {"hold-time", hold}});
    framing_error(s, "message not completed within the hold time",
                  bad_input::Framing::IncompleteTimeout);
  }
}

void Listener::release_idle_up_rings() {
  for (auto& sp : sessions_) {
    if (!sp || sp->ended || !sp->assembler) continue;
    Session& s = *sp;
    uint64_t taken = s.assembler->taken();
    if (taken != s.up_taken_at_tick) {  // the device sent since the last tick
      s.up_taken_at_tick = taken;
      s.up_dirty = true;
      continue;
    }
    if (!s.up_dirty || s.up.free_space() != shm::kRingCapacity) continue;  // not drained
    s.up_dirty = false;
    s.up.release_free_pages(s.assembler->staged());
  }
}
void Listener::signal_cb(evutil_socket_t sig, short, void* arg) {
  log::info("signal received, stopping", {{"signal", static_cast<int>(sig)}});
  static_cast<Listener*>(arg)->stop();
}
void Listener::device_read_cb(evutil_socket_t, short, void* arg) {
  auto* s = static_cast<Session*>(arg);
  s->owner->on_device_readable(*s);
}
void Listener::device_write_cb(evutil_socket_t, short, void* arg) {
  auto* s = static_cast<Session*>(arg);
  s->owner->pump_down(*s);
}

// ---- supervisor channel ----------------------------------------------------

void Listener::on_channel() {
  for (int i = 0; i < kChannelBatch && !stopping_; ++i) {
    auto msg = ipc::recv_msg(ctx_.channel.get(), nullptr, shm::WorkerKind::Listener);
    switch (msg.status) {
      case ipc::Received::Status::Again:
        return;
      case ipc::Received::Status::Closed:
        log::info("supervisor channel closed, stopping", {{"error", msg.error}});
        stop();
        return;
      case ipc::Received::Status::Invalid:
        log::warn("invalid message from the supervisor dropped", {{"error", msg.error}});
        continue;
      case ipc::Received::Status::Ok:
        break;
    }
    switch (msg.type()) {
      case ipc::MsgType::AddSession:
        add_session(msg.as<ipc::AddSession>(), msg.fds);
        break;
      case ipc::MsgType::Shutdown:
        log::info("shutdown requested");
        stop();
        return;
      default:
        if (handle_common_message(msg)) break;  // common/worker.h
        log::warn("unexpected message type from the supervisor",
                  {{"type", static_cast<int>(msg.type())}});
        break;
    }
  }
}

bool Listener::send_session_done(uint32_t slot, uint32_t generation, ipc::SessionEnd reason) {
  auto done = ipc::make<ipc::SessionDone>(ipc::MsgType::SessionDone);
  done.slot = slot;
  done.generation = generation;
  done.reason = static_cast<uint32_t>(reason);
  if (ipc::send_msg(ctx_.channel.get(), &done, sizeof done)) return true;
  log::error("cannot report a session done to the supervisor, stopping",
             {{"error", std::strerror(errno)}});
  stop();
  return false;
}

void Listener::reject_session(const ipc::AddSession& msg, const char* why) {
  log::warn("invalid session handed over", {{"slot", msg.slot},
                                            {"generation", msg.generation},
                                            {"error", why}});
  send_session_done(msg.slot, msg.generation, ipc::SessionEnd::Invalid);
}

void Listener::add_session(const ipc::AddSession& msg, std::vector<UniqueFd>& fds) {
  UniqueFd sock = std::move(fds[0]);
  UniqueFd memfd = std::move(fds[1]);
  if (msg.slot >= shm::kMaxSessions) return reject_session(msg, "slot out of range");
  if (sessions_[msg.slot]) return reject_session(msg, "slot already has a session here");

  long long size = fd_size(memfd.get());
  if (size < static_cast<long long>(shm::kSessionRegionSize))
    return reject_session(msg, "session region missing or too small");
  auto mapping = SharedMapping::map(memfd.get(), shm::kSessionRegionSize, true);
  if (!mapping) return reject_session(msg, "cannot map the session region");
  memfd.reset();  // the mapping keeps the memory
  auto* region = mapping.as<shm::SessionRegion>();
  if (!shm::valid_session(region, mapping.size()))
    return reject_session(msg, "session region has an unknown layout");
  if (region->header.slot != msg.slot || region->header.generation != msg.generation ||
      std::memcmp(region->header.session_id, msg.session_id, 16) != 0)
    return reject_session(msg, "session region belongs to another session");
  shm::SessionSlot& view = control_->sessions[msg.slot];
  auto state = static_cast<shm::SlotState>(view.state.load(std::memory_order_acquire));
  // Closing: the uplink already let go, the listener not yet (e.g. handed
  // over again after a listener restart); still ours to finish.
  if ((state != shm::SlotState::Active && state != shm::SlotState::Closing) ||
      view.generation.load(std::memory_order_acquire) != msg.generation ||
      std::memcmp(view.session_id, msg.session_id, 16) != 0)
    return reject_session(msg, "control slot does not hold this session");

  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(sock.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    return reject_session(msg, "device descriptor is not a stream socket");
  int flags = ::fcntl(sock.get(), F_GETFL);
  if (flags < 0 || ::fcntl(sock.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return reject_session(msg, "cannot make the device socket non-blocking");
  int one = 1;
  ::setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // BGP is small messages

  auto s = std::make_unique<Session>();
  s->owner = this;
  s->slot = msg.slot;
  s->generation = msg.generation;
  s->peer_addr = msg.device.unmapped().to_string();
  s->local_addr = msg.local.unmapped().to_string();
  s->session_id = uuid_to_string(msg.session_id);
  s->view = &view;
  s->up = up_producer(region);
  s->down = down_consumer(region);
  s->mapping = std::move(mapping);
  s->sock = std::move(sock);
  s->read_ev.reset(event_new(base_, s->sock.get(), EV_READ | EV_PERSIST, device_read_cb, s.get()));
  s->write_ev.reset(event_new(base_, s->sock.get(), EV_WRITE, device_write_cb, s.get()));
  if (!s->read_ev || !s->write_ev) return reject_session(msg, "cannot create events");
  s->assembler.emplace(s->up, &region->listener);
  s->down_framing.emplace(&region->listener);
  if (!s->assembler->consistent()) return reject_session(msg, "session region records are corrupt");
  // A session handed over again after a listener restart carries on from
  // its records; statistics continue from what the slot shows.
  s->msgs_up = view.msgs_up.load(std::memory_order_relaxed);
  s->bytes_up = view.bytes_up.load(std::memory_order_relaxed);
  s->bytes_down = view.bytes_down.load(std::memory_order_relaxed);
  s->msgs_down_published = view.msgs_down.load(std::memory_order_relaxed);
  auto up_closed = static_cast<shm::RingClose>(region->up.closed.load(std::memory_order_acquire));

  Session& ref = *s;
  sessions_[msg.slot] = std::move(s);
  bool resumed = ref.assembler->taken() > 0 || ref.down.read_pos() > 0 ||
                 up_closed != shm::RingClose::Open;
  log::debug("session added", {ref.peer(), ref.local(), ref.sid(), {"slot", ref.slot},
                               {"resumed", resumed ? "true" : "false"}});
  if (up_closed == shm::RingClose::Abort)
    return end_session(ref, ipc::SessionEnd::DeviceError, CloseHow::Abortive);
  if (up_closed == shm::RingClose::Eof) {
    ref.device_eof = true;  // the predecessor saw the device's FIN
    ref.up_closed = true;
  }
  if (!reconcile(ref)) return;
  if (!ref.device_eof) pump_up(ref);  // staged whole messages, or starts reading
  // The uplink may have been quicker (bytes already in down, or down closed).
  pump_down(ref);
}

bool Listener::reconcile(Session& s) {
  std::string error;
  auto kernel = tcp_accounting(s.sock.get(), &error);
  if (!kernel) {
    // Nothing to compare with: the records are all there is.
    log::warn("cannot read the kernel's byte counts of a device socket",
              {s.peer(), s.sid(), {"error", error}});
    return true;
  }
  if (kernel->closed) {
    // Reset (its queues are purged, so the counts no longer add up) or
    // gone: the next read or write ends the session; nothing to settle.
    return true;
  }
  if (kernel->fin_sent) {
    // The predecessor was closing this session when it died: finish that.
    end_session(s, s.device_eof ? ipc::SessionEnd::DeviceClosed : ipc::SessionEnd::BackendClosed,
                CloseHow::Orderly);
    return false;
  }
  // Up: read() put the bytes into the ring's free space before it
  // returned; only their count can be missing from the record.
  uint64_t taken = s.assembler->taken();
  if (kernel->read < taken || !s.assembler->adopt(kernel->read - taken)) {
    log::error("device socket and session records disagree, resetting the session",
               {s.peer(), s.sid(), {"kernel-read", kernel->read}, {"recorded", taken}});
    end_session(s, ipc::SessionEnd::Invalid, CloseHow::Abortive);
    return false;
  }
  if (kernel->read > taken)
    log::info("reconciled device bytes read by the previous listener",
              {s.peer(), s.sid(), {"bytes", kernel->read - taken}});
  // Down: bytes the kernel took but read_pos does not show yet were sent;
  // they are still in the ring (only consume() frees them).
  uint64_t sent = s.down.read_pos();
  if (kernel->written < sent || kernel->written - sent > s.down.available()) {
    log::error("device socket and session records disagree, resetting the session",
               {s.peer(), s.sid(), {"kernel-written", kernel->written}, {"recorded", sent}});
    end_session(s, ipc::SessionEnd::Invalid, CloseHow::Abortive);
    return false;
  }
  uint64_t missing = kernel->written - sent;
  uint64_t followed = s.down_framing->saved_position();
  if (followed < sent || followed > kernel->written) {
    s.down_framing->lose();  // cannot happen: saves come between send and consume
  } else if (followed < kernel->written) {
    uint8_t buf[4096];
    for (uint64_t at = followed; at < kernel->written;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof buf, kernel->written - at));
      s.down.peek(static_cast<size_t>(at - sent), buf, n);
      if (auto open = s.down_framing->feed({buf, n})) s.assembler->peer_open(*open);
      at += n;
    }
  }
  if (missing) {
    s.down_framing->save(kernel->written);
    s.down.consume(static_cast<size_t>(missing));
    s.bytes_down += missing;
    control_->counters.bytes_down.fetch_add(missing, std::memory_order_relaxed);
    publish_stats(s);
    wake_uplink(s.slot);
    log::info("reconciled backend bytes written by the previous listener",
              {s.peer(), s.sid(), {"bytes", missing}});
  }
  return true;
}

// ---- device -> up ring -----------------------------------------------------

void Listener::start_reading(Session& s) {
  if (s.reading || s.ended || s.device_eof) return;
  if (event_add(s.read_ev.get(), nullptr) == 0) s.reading = true;
}

void Listener::stop_reading(Session& s) {
  if (!s.reading) return;
  event_del(s.read_ev.get());
  s.reading = false;
}

void Listener::on_device_readable(Session& s) {
  if (s.ended || s.waiting_space) return;
  // Straight into the up ring's free space: nothing read from the device
  // is ever only in this process's memory.
  auto space = s.assembler->read_space();
  if (space.first.empty()) return pump_up(s);  // full: pump_up pauses reading
  iovec iov[2] = {{space.first.data(), space.first.size()},
                  {space.second.data(), space.second.size()}};
  ssize_t n;
  do {
    n = ::readv(s.sock.get(), iov, space.second.empty() ? 1 : 2);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    KBGP_CRASH_POINT(g_crash_after_read);
    s.assembler->commit_read(static_cast<size_t>(n));
    pump_up(s);
    return;
  }
  if (n < 0 && would_block(errno)) return;
  if (n < 0) {
    log::debug("device read failed", {s.peer(), s.local(), s.sid(), {"error", std::strerror(errno)}});
    return end_session(s, ipc::SessionEnd::DeviceError, CloseHow::Abortive);
  }
  // Orderly EOF from the device. Whole messages are all in the ring (reading
  // only happens while nothing waits for space); a partial one is cut off.
  stop_reading(s);
  s.device_eof = true;
  if (s.assembler->staged() > 0)
    log::info("device closed in the middle of a BGP message",
              {s.peer(), s.local(), s.sid(), {"dropped-bytes", s.assembler->staged()}});
  s.up.close(shm::RingClose::Eof);
  s.up_closed = true;
  wake_uplink(s.slot);
  pump_down(s);  // ends the session if down is already closed and drained
}

void Listener::pump_up(Session& s) {
  // Before drain() looks at the free space: see wait_for_space below.
  const uint64_t seen_read = s.up.read_pos();
  auto result = s.assembler->drain();
  if (result.messages) {
    s.msgs_up += result.messages;
    s.bytes_up += result.bytes;
    control_->counters.messages_up.fetch_add(result.messages, std::memory_order_relaxed);
    control_->counters.bytes_up.fetch_add(result.bytes, std::memory_order_relaxed);
    publish_stats(s);
    // Only an uplink that sleeps on this ring needs the wake-up; one with a
    // write in flight comes back by itself (ring.h, wake-up coalescing).
    if (s.up.consumer_wants_wake()) wake_uplink(s.slot);
  }
  if (result.device_open) {
    const auto& open = *result.device_open;
    s.view->peer_asn.store(open.asn, std::memory_order_relaxed);
    s.view->peer_router_id.store(open.router_id, std::memory_order_relaxed);
    s.view->hold_time.store(open.hold_time, std::memory_order_relaxed);
    log::debug("device OPEN", {s.peer(), s.sid(), {"asn", open.asn}, {"hold-time", open.hold_time},
                               {"extended-message", open.extended_message}});
  }
  switch (result.status) {
    case FrameAssembler::Result::Status::Malformed:
      return framing_error(s, result.error, result.reason);
    case FrameAssembler::Result::Status::NeedsSpace:
      // Back-pressure: the kernel's receive buffer fills, TCP's window closes
      // and the device waits. Reading resumes when the uplink frees space.
      stop_reading(s);
      if (!s.waiting_space) {
        s.waiting_space = true;
        ++sessions_waiting_space_;
      }
      // The uplink wakes us when it frees space, if it sees the flag; space
      // freed before it was set is seen here instead.
      if (s.up.wait_for_space(seen_read)) return pump_up(s);
      return;
    case FrameAssembler::Result::Status::Drained:
      if (s.waiting_space) {
        s.waiting_space = false;
        --sessions_waiting_space_;
      }
      start_reading(s);
      return;
  }
}

void Listener::framing_error(Session& s, const char* error, bad_input::Framing reason) {
  control_->counters.framing_errors.fetch_add(1, std::memory_order_relaxed);
  shm::count(control_->bad_input, reason);
  log::warn("malformed BGP framing from device",
            {s.peer(), s.local(), s.sid(), {"error", error},
             {"reason", bad_input::framing_label(reason)}});
  end_session(s, ipc::SessionEnd::FramingError, CloseHow::Abortive);
}

// ---- down ring -> device ---------------------------------------------------

void Listener::on_down_ready() {
  eventfd_drain(down_ready_fd_);
  shm::drain_pending(control_->down_pending, [this](uint32_t slot) {
    Session* s = sessions_[slot].get();
    if (!s) return;  // a session that already ended: stale bit
    pump_down(*s);
    if (!s->ended && s->waiting_space) pump_up(*s);
  });
  // A session paused for up-ring space must not depend on the uplink having
  // marked exactly its bit: retry every paused one (usually none).
  if (sessions_waiting_space_ == 0) return;
  for (auto& entry : sessions_) {
    if (entry && entry->waiting_space && !entry->ended) pump_up(*entry);
    if (sessions_waiting_space_ == 0) break;
  }
}

void Listener::pump_down(Session& s) {
  if (s.ended) return;
  bool freed = false;
  for (;;) {
    // closed first, then available(): the producer publishes its last bytes
    // before it closes, so "closed and nothing available" is the end.
    auto closed = s.down.closed();
    if (closed == shm::RingClose::Abort) {
      if (freed) wake_uplink(s.slot);
      return end_session(s, ipc::SessionEnd::BackendKilled, CloseHow::Abortive);
    }
    const uint64_t seen_write = s.down.write_pos();  // before readable(): see below
    auto spans = s.down.readable();
    if (spans.size() == 0) {
      if (closed == shm::RingClose::Eof) {
        if (freed) wake_uplink(s.slot);
        return end_session(s, s.device_eof ? ipc::SessionEnd::DeviceClosed
                                           : ipc::SessionEnd::BackendClosed,
                           CloseHow::Orderly);
      }
      // Sleep until the uplink writes (it wakes us only when it sees this
      // flag); bytes written before the flag was set are seen here.
      if (s.down.wait_for_bytes(seen_write)) continue;
      break;
    }
    iovec iov[2] = {{const_cast<uint8_t*>(spans.first.data()), spans.first.size()},
                    {const_cast<uint8_t*>(spans.second.data()), spans.second.size()}};
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = spans.second.empty() ? 1 : 2;
    ssize_t n = ::sendmsg(s.sock.get(), &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && would_block(errno)) {
      event_add(s.write_ev.get(), nullptr);
      break;
    }
    if (n < 0) {
      log::debug("device write failed", {s.peer(), s.local(), s.sid(), {"error", std::strerror(errno)}});
      if (freed) wake_uplink(s.slot);
      return end_session(s, ipc::SessionEnd::DeviceError, CloseHow::Abortive);
    }
    size_t sent = static_cast<size_t>(n);
    KBGP_CRASH_POINT(g_crash_after_write);
    size_t first = std::min(sent, spans.first.size());
    auto open = s.down_framing->feed(spans.first.first(first));
    if (sent > first) {
      auto second_open = s.down_framing->feed(spans.second.first(sent - first));
      if (second_open) open = second_open;
    }
    if (open) {
      s.assembler->peer_open(*open);
      log::debug("backend OPEN", {s.peer(), s.sid(), {"asn", open->asn},
                                  {"extended-message", open->extended_message}});
    }
    // Recorded before the bytes are freed; a crash in between is what
    // reconcile() repairs from the kernel's count.
    s.down_framing->save(s.down.read_pos() + sent);
    s.down.consume(sent);
    s.bytes_down += sent;
    control_->counters.bytes_down.fetch_add(sent, std::memory_order_relaxed);
    freed = true;
    if (sent < spans.size()) {
      event_add(s.write_ev.get(), nullptr);  // the socket buffer is full
      break;
    }
  }
  if (freed) {
    publish_stats(s);
    // Space freed in down: only an uplink waiting for it needs to know.
    if (s.down.producer_wants_wake()) wake_uplink(s.slot);
  }
}

// ---- the end ---------------------------------------------------------------

void Listener::publish_stats(Session& s) {
  s.view->msgs_up.store(s.msgs_up, std::memory_order_relaxed);
  s.view->bytes_up.store(s.bytes_up, std::memory_order_relaxed);
  s.view->bytes_down.store(s.bytes_down, std::memory_order_relaxed);
  uint64_t msgs_down = s.down_framing->messages();
  if (msgs_down != s.msgs_down_published) {
    control_->counters.messages_down.fetch_add(msgs_down - s.msgs_down_published,
                                               std::memory_order_relaxed);
    s.msgs_down_published = msgs_down;
    s.view->msgs_down.store(msgs_down, std::memory_order_relaxed);
  }
}

void Listener::end_session(Session& s, ipc::SessionEnd reason, CloseHow how) {
  if (s.ended) return;
  s.ended = true;
  stop_reading(s);
  event_del(s.write_ev.get());
  if (s.waiting_space) {
    s.waiting_space = false;
    --sessions_waiting_space_;
  }
  if (how == CloseHow::Abortive) {
    reset_connection(s.sock.get());
  } else {
    ::shutdown(s.sock.get(), SHUT_WR);  // FIN now, whoever else holds the socket
  }
  s.sock.reset();
  if (!s.up_closed) {
    s.up.close(how == CloseHow::Abortive ? shm::RingClose::Abort : shm::RingClose::Eof);
    s.up_closed = true;
    wake_uplink(s.slot);
  }
  publish_stats(s);
  log::info("session ended", {s.peer(), s.local(), s.sid(),
                              {"reason", ipc::session_end_name(reason)},
                              {"bytes-up", s.bytes_up},
                              {"bytes-down", s.bytes_down},
                              {"messages-up", s.msgs_up},
                              {"messages-down", s.down_framing->messages()}});
  send_session_done(s.slot, s.generation, reason);
  // Freed after this loop iteration: callers up the stack still hold `s`.
  ended_.push_back(std::move(sessions_[s.slot]));
}

}  // namespace kbgp::listener
