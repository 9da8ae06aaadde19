#include "uplink/control_client.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "common/layout.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "uplink/control_response.h"

namespace kbgp::uplink {

namespace {

// After a failed read, how long the Control stream may take to end by itself.
constexpr int64_t kUnreadableGraceNs = 2'000'000'000;

pb::ControlRequest to_request(const DeviceQuery& q) {
  pb::ControlRequest r;
  r.set_proto(q.proto);
  r.set_device_ip(q.device_ip);
  r.set_device_port(q.device_port);
  r.set_proxy_ip(q.proxy_ip);
  r.set_proxy_port(q.proxy_port);
  return r;
}

}  // namespace

ControlClient::ControlClient(const ChannelFactory& factory, const UplinkConfig& config,
                             shm::ControlRegion* region, StreamQueue& queue,
                             std::function<void()> wake, PushCallback pushed)
    : config_(config),
      region_(region),
      stream_queue_(queue),
      wake_(std::move(wake)),
      pushed_(std::move(pushed)),
      channel_(factory.make("control")),
      stub_(pb::ProxyService::NewStub(channel_)),
      metadata_(common_metadata(config.agent)),
      backoff_(500'000'000, 30'000'000'000),
      cache_(config.agent.site_id) {}

std::optional<ControlAnswer> ControlClient::lookup(const DeviceQuery& query, AnswerCallback done,
                                                  bool skip_cache) {
  int64_t now = monotonic_ns();
  std::lock_guard lock(mu_);
  if (!skip_cache) {
    if (auto hit = cache_.use(query.proto, query.device_ip, now)) return hit;
  }
  auto [it, fresh] = pending_.try_emplace(PendingKey{query.proto, query.device_ip});
  it->second.waiters.push_back({std::move(done), now + kControlAnswerTimeoutNs});
  if (fresh) {
    it->second.query = query;
    // Without a stream the request waits for the next one (open_stream_locked
    // sends every pending request).
    if (stream_ && !stream_->let_go_done()) enqueue_locked(to_request(query));
  }
  return std::nullopt;
}

void ControlClient::forget(const std::string& proto, const std::string& device_ip) {
  std::lock_guard lock(mu_);
  if (cache_.drop(proto, device_ip))
    log::info("dropped cached Control answer", {{"device_ip", device_ip}});
}

int64_t ControlClient::tick(int64_t now) {
  Calls expired;
  int64_t next = std::numeric_limits<int64_t>::max();
  std::string why;
  {
    std::lock_guard lock(mu_);
    why = connected_ ? "no Control answer within 10 s"
                     : "Control stream is not connected (" + last_error_ + ")";
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto& waiters = it->second.waiters;
      for (auto w = waiters.begin(); w != waiters.end();) {
        if (w->deadline_ns <= now) {
          expired.emplace_back(std::move(w->done), std::nullopt);
          w = waiters.erase(w);
        } else {
          next = std::min(next, w->deadline_ns);
          ++w;
        }
      }
      it = waiters.empty() ? pending_.erase(it) : std::next(it);
    }
    // The cache may be large: swept at most once a second, and only when
    // an entry is due.
    if (now >= next_cache_expiry_ns_ && now >= cache_.next_expiry()) {
      cache_.expire(now);
      next_cache_expiry_ns_ = now + 1'000'000'000;
    }
    if (stream_ && unreadable_at_ns_) {
      if (now >= unreadable_at_ns_) {
        unreadable_at_ns_ = 0;
        shm::count(region_->bad_input, bad_input::Backend::ControlStreamFailed);
        log::warn("the Control stream stopped being readable but did not end (a ControlResponse "
                  "gRPC could not parse?), cancelling it to reconnect");
        stream_->cancel();
      } else {
        next = std::min(next, unreadable_at_ns_);
      }
    }
    if (!stream_ && !shutting_down_) {
      if (now >= reopen_at_ns_) open_stream_locked(now);
      else next = std::min(next, reopen_at_ns_);
    }
    // Keepalives also go out before the server said anything: they are what
    // shows a silent server that the stream is in use.
    if (stream_ && !stream_->let_go_done()) {
      if (now >= next_keepalive_ns_) send_keepalive_locked(now);
      next = std::min(next, next_keepalive_ns_);
    }
  }
  run(expired, why);
  return next;
}

void ControlClient::shutdown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  if (stream_) {
    stream_->cancel();
    stream_->let_go();
  }
}

bool ControlClient::stream_alive() const {
  std::lock_guard lock(mu_);
  return stream_ != nullptr;
}

void ControlClient::open_stream_locked(int64_t now) {
  if (opened_once_) region_->counters.grpc_reconnects.fetch_add(1, std::memory_order_relaxed);
  opened_once_ = true;
  connected_ = false;
  answered_on_stream_ = false;
  unreadable_at_ns_ = 0;
  write_in_flight_ = false;
  read_in_flight_ = false;
  queue_.clear();
  log::debug("opening Control stream", {{"target", config_.target}});
  stream_ = ControlStream::start(weak_from_this(), metadata_, stream_queue_,
                                 [this](grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
                                   return stub_->PrepareAsyncControl(ctx, cq);
                                 });
  read_in_flight_ = true;
  stream_->read();
  // A keepalive right away: a server that answers it shows the stream is up
  // (and gives a first RTT) without waiting 30 s; servers send no headers
  // before their first message.
  send_keepalive_locked(now);
  // Requests sent on the stream that ended were lost with it.
  for (const auto& [key, pending] : pending_) enqueue_locked(to_request(pending.query));
}

void ControlClient::send_keepalive_locked(int64_t now) {
  pb::ControlRequest keepalive;
  keepalive.set_action(pb::CONTROL_ACTION_KEEPALIVE);
  enqueue_locked(std::move(keepalive));
  keepalive_sent_mono_ns_ = now;
  region_->control.last_tx_ns.store(realtime_ns(), std::memory_order_relaxed);
  next_keepalive_ns_ = now + kControlKeepaliveNs;
}

void ControlClient::enqueue_locked(pb::ControlRequest request) {
  if (request.action() != pb::CONTROL_ACTION_KEEPALIVE)
    region_->counters.control_requests.fetch_add(1, std::memory_order_relaxed);
  queue_.push_back(std::move(request));
  write_next_locked();
}

void ControlClient::write_next_locked() {
  // gRPC allows one outstanding write per stream; the rest wait in queue_.
  if (write_in_flight_ || queue_.empty() || !stream_ || stream_->let_go_done()) return;
  stream_->outgoing() = std::move(queue_.front());
  queue_.pop_front();
  write_in_flight_ = true;
  stream_->write();
}

void ControlClient::mark_connected_locked() {
  if (connected_) return;
  connected_ = true;
  region_->control.connected.store(1, std::memory_order_relaxed);
  region_->control.since_ns.store(realtime_ns(), std::memory_order_relaxed);
  log::info("Control stream connected", {{"target", config_.target}});
}

void ControlClient::on_stream_metadata(ControlStream& stream, bool ok) {
  std::lock_guard lock(mu_);
  // Empty initial metadata is also what gRPC reports for a stream that
  // failed before any arrived (a refused token): connected only with keys,
  // else at the first answer.
  if (&stream != stream_.get() || !ok || stream_->server_metadata().empty()) return;
  mark_connected_locked();
}

void ControlClient::on_stream_read(ControlStream& stream, bool ok) {
  Calls calls;
  {
    std::lock_guard lock(mu_);
    if (&stream != stream_.get()) return;
    read_in_flight_ = false;
    if (!ok) {
      // The server ended the stream (or it broke): let_go() brings the status.
      stream_->let_go();
      // gRPC also says !ok for a ControlResponse it could not parse, and
      // the call then stays open: deaf, it would answer no device again.
      // tick() cancels it if it has not ended by then.
      unreadable_at_ns_ = monotonic_ns() + kUnreadableGraceNs;
      return;
    }
    mark_connected_locked();
    if (!answered_on_stream_) backoff_.reset();
    answered_on_stream_ = true;
    region_->control.messages_rx.fetch_add(1, std::memory_order_relaxed);
    handle_response_locked(stream_->incoming(), calls);
    if (std::string* key = stream_->incoming().mutable_tcp_md5(); !key->empty()) {
      explicit_bzero(key->data(), key->size());  // handed on; not kept here
      key->clear();
    }
    if (!stream_->let_go_done()) {
      read_in_flight_ = true;
      stream_->read();
    }
  }
  run(calls, "");
}

void ControlClient::handle_response_locked(const pb::ControlResponse& response, Calls& calls) {
  if (response.action() == pb::CONTROL_ACTION_KEEPALIVE) {
    region_->control.last_rx_ns.store(realtime_ns(), std::memory_order_relaxed);
    if (keepalive_sent_mono_ns_) {
      // The first keepalive after ours is taken as its answer.
      region_->control.last_rtt_us.store((monotonic_ns() - keepalive_sent_mono_ns_) / 1000,
                                         std::memory_order_relaxed);
      keepalive_sent_mono_ns_ = 0;
    }
    return;
  }
  if (!pb::ControlAction_IsValid(response.action())) {
    // Not in the interface: reading it as "allow" could let in a device
    // the backend meant to refuse. Not cached; the device's waiting
    // sessions end now (the next connection asks again).
    shm::count(region_->bad_input, bad_input::Backend::ControlUnknownAction);
    log::warn("Control answer with an unknown action ignored",
              {{"device_ip", response.device_ip()},
               {"action", static_cast<int64_t>(response.action())}});
    auto it = pending_.find(PendingKey{response.proto(), response.device_ip()});
    if (it == pending_.end()) return;
    for (auto& w : it->second.waiters)
      calls.emplace_back(
          [done = std::move(w.done)](const ControlAnswer*, const std::string&) {
            done(nullptr, "the backend answered with an unknown action");
          },
          std::nullopt);
    pending_.erase(it);
    return;
  }
  ControlAnswer answer = answer_from_response(response);
  cache_.put(answer, monotonic_ns());
  auto it = pending_.find(PendingKey{answer.proto, answer.device_ip});
  if (key_callback_) {
    // One copy of the key, wiped as soon as the callback has handed it on.
    auto notice = std::make_shared<KeyNotice>();
    notice->device_ip = answer.device_ip;
    notice->verdict = answer.verdict;
    notice->ttl_seconds = answer.ttl_seconds;
    notice->device_id = answer.device_id;
    notice->pushed = it == pending_.end();
    notice->tcp_md5 = response.tcp_md5();
    calls.emplace_back(
        [this, notice](const ControlAnswer*, const std::string&) {
          key_callback_(*notice);
          explicit_bzero(notice->tcp_md5.data(), notice->tcp_md5.size());
          notice->tcp_md5.clear();
        },
        std::nullopt);
  }
  if (it == pending_.end()) {
    // Unsolicited: the backend changed its mind about a device. The cache
    // has it already; the uplink acts on a block (or on a lifted one).
    log::info("Control update pushed by the backend",
              {{"device_ip", answer.device_ip},
               {"action", answer.blocked() ? "BLOCK_IP" : "UNSPECIFIED"},
               {"ttl_seconds", answer.ttl_seconds},
               {"ttl_counter", answer.ttl_counter}});
    if (pushed_) {
      calls.emplace_back(
          [this](const ControlAnswer* a, const std::string&) {
            if (a) pushed_(*a);
          },
          answer);
    }
    return;
  }
  for (auto& w : it->second.waiters) calls.emplace_back(std::move(w.done), answer);
  pending_.erase(it);
}

void ControlClient::on_stream_write(ControlStream& stream, bool ok) {
  std::lock_guard lock(mu_);
  if (&stream != stream_.get()) return;
  write_in_flight_ = false;
  if (ok) write_next_locked();
  // !ok: the stream is broken; the pending requests are sent again on the
  // next one.
}

void ControlClient::on_stream_done(ControlStream& stream, const grpc::Status& status) {
  {
    std::lock_guard lock(mu_);
    if (&stream != stream_.get()) return;
    stream_.reset();
    if (connected_) region_->control.connected.store(0, std::memory_order_relaxed);
    connected_ = false;
    keepalive_sent_mono_ns_ = 0;
    if (shutting_down_) return;
    last_error_ = status_code_name(status.error_code()) + ": " +
                  redact(status.error_message(), config_.agent.token);
    int64_t delay = backoff_.next_delay_ns();
    reopen_at_ns_ = monotonic_ns() + delay;
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      log::error("the backend refused our credentials: check --email and --token "
                 "($KENTIK_API_EMAIL, $KENTIK_API_TOKEN)",
                 {{"code", status_code_name(status.error_code())},
                  {"error", redact(status.error_message(), config_.agent.token)},
                  {"email", config_.agent.email},
                  {"retry_in_ms", delay / 1000000}});
    } else {
      // INTERNAL: a message gRPC could not parse; RESOURCE_EXHAUSTED: one
      // over the size limit. (UNAVAILABLE & co. are the network's doing.)
      if (status.error_code() == grpc::StatusCode::INTERNAL ||
          status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
        shm::count(region_->bad_input, bad_input::Backend::ControlStreamFailed);
      log::warn("Control stream ended", {{"code", status_code_name(status.error_code())},
                                         {"error", redact(status.error_message(),
                                                          config_.agent.token)},
                                         {"retry_in_ms", delay / 1000000}});
    }
  }
  wake_();
}

void ControlClient::run(Calls& calls, const std::string& error) {
  for (auto& [done, answer] : calls) done(answer ? &*answer : nullptr, error);
}

}  // namespace kbgp::uplink
