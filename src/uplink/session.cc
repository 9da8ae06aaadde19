#include "uplink/session.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "common/log.h"
#include "common/resume_protocol.h"
#include "common/timeutil.h"
#include "common/worker.h"
#include "uplink/batching.h"
#include "uplink/control_client.h"
#include "uplink/data_decisions.h"
#include "uplink/metadata.h"

namespace kbgp::uplink {

namespace {
// After we sent KILL, the backend has this long to end the stream before we
// cancel it.
constexpr int64_t kKillGraceNs = 5'000'000'000;
// After a failed read, how long the stream may take to end by itself.
constexpr int64_t kUnreadableGraceNs = 2'000'000'000;
// Message buffers larger than this are freed after use instead of kept.
constexpr size_t kKeepBufferBytes = 16 * 1024;
// While the uplink stops: how long a KILL may take before we cancel.
constexpr int64_t kStopKillGraceNs = 1'000'000'000;
// Backoff between attempts to resume a failed Data stream.
constexpr int64_t kReopenInitialNs = 100'000'000;
constexpr int64_t kReopenMaxNs = 5'000'000'000;

}  // namespace

Session::Session(SessionEnv& env, SessionIdentity identity, SharedMapping region)
    : env_(env),
      id_(std::move(identity)),
      region_map_(std::move(region)),
      region_(region_map_.as<shm::SessionRegion>()),
      up_(up_consumer(region_)),
      down_(down_producer(region_)),
      ledger_(&region_->uplink),
      reopen_backoff_(kReopenInitialNs, kReopenMaxNs) {
  // The supervisor zeroes these for a new session. Non-zero means an earlier
  // uplink process carried this session that far before it was restarted:
  // the next Data stream continues from there. The up ring holds what was
  // not sent, and (extension) what was sent but not acknowledged, which the
  // ledger can cut into the same DataRequests again.
  counter_up_ = slot().data_requests.load(std::memory_order_acquire);
  counter_down_ = slot().data_responses.load(std::memory_order_acquire);
  uint64_t read = up_.read_pos();
  auto end = ledger_.end_of(counter_up_);
  sent_end_ = end && *end >= read && *end <= up_.write_pos() ? *end : read;
}

Session::~Session() {
  // Normally the stream is long done; on a forced exit cut it so its
  // status can come (the stream only holds a weak_ptr to us).
  if (stream_) {
    stream_->cancel();
    stream_->let_go();
  }
}

shm::SessionSlot& Session::slot() const { return env_.control->sessions[id_.slot]; }

std::string Session::device_ip() const { return id_.device.unmapped().address_string(); }

void Session::notify_listener() {
  shm::mark_pending(env_.control->down_pending, id_.slot);
  eventfd_signal(env_.down_ready_fd);
}

void Session::close_down_locked(shm::RingClose how) {
  if (down_closed_) return;
  down_closed_ = true;
  down_.close(how);
  notify_listener();
}

void Session::finish_locked(ipc::SessionEnd reason) {
  if (phase_ == Phase::Done) return;
  phase_ = Phase::Done;
  slot().data_connected.store(0, std::memory_order_relaxed);
  log::debug("session ended", {{"session-id", id_.session_id},
                               {"reason", ipc::session_end_name(reason)},
                               {"data-requests", counter_up_},
                               {"held", coalescer_.holds()}});
  env_.ended(id_.slot, id_.generation, reason);
}

void Session::let_go_locked() {
  if (stream_) stream_->let_go();
}

void Session::publish_slot_locked(const Metadata* server_metadata) {
  shm::SessionSlot& s = slot();
  s.device_id.store(answer_.device_id, std::memory_order_relaxed);
  std::string json;
  if (server_metadata) json = server_metadata_json(*server_metadata, sizeof s.metadata_json - 1);
  // Seqlock: odd while writing, so a reader (the admin) retries instead of
  // using a torn copy.
  uint32_t seq = s.metadata_seq.load(std::memory_order_relaxed);
  if (seq & 1) ++seq;
  s.metadata_seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  if (server_metadata) {
    std::memcpy(s.metadata_json, json.data(), json.size());
    s.metadata_json[json.size()] = '\0';
    s.metadata_len = static_cast<uint32_t>(json.size());
  }
  size_t name_len = std::min(answer_.device_name.size(), sizeof s.device_name - 1);
  std::memcpy(s.device_name, answer_.device_name.data(), name_len);
  s.device_name[name_len] = '\0';
  s.metadata_seq.store(seq + 2, std::memory_order_release);
}

// ---- Control ---------------------------------------------------------------

void Session::on_control_answer(const ControlAnswer& answer) {
  std::lock_guard lock(mu_);
  if (phase_ != Phase::AwaitControl) return;
  answer_ = answer;
  publish_slot_locked(nullptr);
  if (answer.blocked()) {
    env_.control->counters.devices_denied.fetch_add(1, std::memory_order_relaxed);
    DenyNotice notice;
    notice.device = id_.device;
    notice.local = id_.local;
    notice.session_id = id_.session_id;
    notice.ttl_seconds = answer.ttl_seconds;
    notice.ttl_counter = answer.ttl_counter;
    notice.slot = id_.slot;
    notice.generation = id_.generation;
    env_.denied(notice);  // before SessionDone: both run in order on the event thread
    close_down_locked(shm::RingClose::Abort);
    finish_locked(ipc::SessionEnd::Denied);
    return;
  }
  if (up_.closed() == shm::RingClose::Abort) {
    close_down_locked(shm::RingClose::Abort);
    finish_locked(ipc::SessionEnd::DeviceError);
    return;
  }
  open_stream_locked(counter_up_ != 0 || counter_down_ != 0);
}

void Session::on_control_failure(const std::string& why) {
  std::lock_guard lock(mu_);
  if (phase_ != Phase::AwaitControl) return;
  log::warn("ending session: no Control answer for the device",
            {{"session-id", id_.session_id}, {"device_ip", device_ip()}, {"reason", why}});
  close_down_locked(shm::RingClose::Abort);
  finish_locked(ipc::SessionEnd::UplinkError);
}

// ---- Data stream -------------------------------------------------------------

void Session::open_stream_locked(bool resume) {
  in_flight_ = InFlight::None;
  coalescer_.reset();
  in_flight_bytes_ = 0;
  read_in_flight_ = false;
  read_closed_ = false;
  writes_done_ = false;
  kill_wanted_ = false;
  down_holding_ = false;
  restart_ = Restart::None;
  cancel_at_ns_ = 0;
  unreadable_at_ns_ = 0;
  metadata_wait_at_ns_ = 0;
  reopen_at_ns_ = 0;
  open_counter_up_ = counter_up_;
  open_counter_down_ = counter_down_;
  metadata_seen_ = false;
  extension_ = false;
  resend_next_ = resend_to_ = 0;
  // Part of the next DataResponse may be in the down ring already (this or
  // an earlier uplink was copying it when its stream broke); a backend that
  // resends it must not make the device see that part twice.
  down_skip_ = ledger_.delivered_part(counter_down_ + 1, down_.write_pos());

  DataCallInfo call;
  call.device = id_.device;
  call.local = id_.local;
  call.session_id = id_.session_id;
  call.counter_up = counter_up_;
  call.counter_down = counter_down_;
  call.control_metadata = &answer_.metadata;
  std::vector<std::string> skipped;
  Metadata md = data_metadata(env_.config->agent, call, &skipped);
  md.emplace_back(resume::kMetadataKey, resume::kMetadataValue);
  if (!skipped.empty()) {
    std::string keys;
    for (const auto& k : skipped) keys += (keys.empty() ? "" : ",") + k;
    log::warn("left out unusable Control metadata keys",
              {{"session-id", id_.session_id}, {"keys", redact(keys, env_.config->agent.token)}});
  }

  ChannelLease lease = env_.pool->acquire();
  DataStub* stub = lease.stub();
  // A resume (after a restart of the uplink: one per session at once) is
  // logged at debug; its failure and what it had to resend are at info.
  (resume ? log::debug : log::info)("opening Data stream",
            {{"client-metadata", redacted_metadata_json(md, env_.config->agent.token)},
             {"device", answer_.device_label()},
             {"local-addr", id_.local.unmapped().to_string()},
             {"peer-addr", id_.device.unmapped().to_string()},
             {"session-id", id_.session_id},
             {"connection", lease.connection_id()},
             {"resume", resume ? "true" : "false"},
             {"counter-up", counter_up_},
             {"counter-down", counter_down_}});
  stream_ = DataStream::start(
      weak_from_this(), md, *env_.stream_queue,
      [stub](grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
        return stub->PrepareCall(ctx, kDataMethod, cq);
      },
      std::move(lease));
  env_.control->counters.data_streams_open.fetch_add(1, std::memory_order_relaxed);
  phase_ = Phase::Streaming;
  pump_locked();
}

void Session::pump() {
  std::lock_guard lock(mu_);
  pump_locked();
}

void Session::pump_locked() {
  if (phase_ == Phase::AwaitControl) {
    // The device gave up before Control answered: nothing to relay.
    if (up_.closed() == shm::RingClose::Abort) {
      close_down_locked(shm::RingClose::Abort);
      finish_locked(ipc::SessionEnd::DeviceError);
    }
    return;
  }
  if (phase_ != Phase::Streaming || !stream_) return;
  pump_down_locked();
  pump_up_locked();
}

void Session::begin_kill_locked(ipc::SessionEnd reason) {
  if (!end_reason_) end_reason_ = reason;
  kill_wanted_ = true;
  close_down_locked(shm::RingClose::Abort);
  cancel_at_ns_ = monotonic_ns() + kKillGraceNs;
}

WireDataRequest::Fill Session::fill_from_up(size_t offset) const {
  return [this, offset](uint8_t* out, size_t n) { up_.peek(offset, out, n); };
}

void Session::pump_up_locked() {
  if (!stream_ || stream_->let_go_done() || in_flight_ != InFlight::None || writes_done_) return;
  WireDataRequest& request = stream_->outgoing();
  if (kill_wanted_) {
    kill_wanted_ = false;
    request.set_action(pb::DATA_ACTION_KILL);
    in_flight_ = InFlight::Kill;
    if (extension_) count_request_locked(sent_end_);
    stream_->write();
    return;
  }
  if (end_reason_) return;  // ending without a word to the backend
  // Nothing before the backend's counters: a resume may start by resending.
  if (!metadata_seen_) return;
  if (restart_ == Restart::Requested) {
    // Graceful restart asked by the backend: answer in kind, then half-close;
    // the stream's end opens the next one.
    request.set_action(pb::DATA_ACTION_RESTART);
    in_flight_ = InFlight::Restart;
    if (extension_) count_request_locked(sent_end_);
    stream_->write();
    return;
  }
  if (restart_ == Restart::Sent) return;
  if (extension_ && acked_down_sent_ < counter_down_) {
    // Lets the backend forget the DataResponses we have in the down ring.
    request.set(resume::kActionAck, resume::encode_ack(counter_down_));
    acked_down_sent_ = counter_down_;
    in_flight_ = InFlight::Ack;
    stream_->write();
    return;
  }
  if (resend_next_ != 0) {
    // A DataRequest the backend missed, exactly as it was first sent (one
    // that carried only an action goes as an empty one).
    auto from = ledger_.end_of(resend_next_ - 1);
    auto to = ledger_.end_of(resend_next_);
    uint64_t read = up_.read_pos();
    if (!from || !to || *from < read || *to < *from || *to > sent_end_) {
      log::error("a DataRequest to resend is no longer in the up ring, killing the session",
                 {{"session-id", id_.session_id}, {"request", resend_next_}});
      begin_kill_locked(ipc::SessionEnd::Invalid);
      pump_up_locked();
      return;
    }
    if (*to > *from)
      request.set(0, static_cast<size_t>(*to - *from), fill_from_up(static_cast<size_t>(*from - read)));
    else
      request.set_action(0);
    in_flight_ = InFlight::Resend;
    stream_->write();
    return;
  }

  // `closed` before the bytes: the listener publishes its last bytes before
  // it closes, so what we then see available is everything.
  shm::RingClose closed = up_.closed();
  if (closed == shm::RingClose::Abort) {
    log::info("device connection aborted, killing the Data stream",
              {{"session-id", id_.session_id}, {"device_ip", device_ip()}});
    begin_kill_locked(ipc::SessionEnd::DeviceError);
    pump_up_locked();
    return;
  }
  // Extension: at most kRequestWindow DataRequests unacknowledged (the
  // ledger remembers no more), the acknowledged one included.
  if (extension_ && counter_up_ - acked_up_ >= shm::kRequestWindow - 1) return;
  const size_t offset = static_cast<size_t>(sent_end_ - up_.read_pos());
  const uint64_t seen_write = up_.write_pos();  // before the plan: see wait_for_bytes
  // Under a steady flow a small batch waits a moment for more
  // (coalescing.h); the timer brings us back (tick), not the listener.
  // Decided on the unsent byte count, before the headers are walked: a
  // held batch would be walked again when it goes.
  const int64_t now = monotonic_ns();
  const bool was_holding = coalescer_.holding();
  const size_t available = up_.available();
  if (const size_t unsent = available > offset ? available - offset : 0;
      unsent > 0 && !coalescer_.send_now(std::min(unsent, kMaxBatchBytes),
                                         closed == shm::RingClose::Eof, now)) {
    if (!was_holding) env_.wake_at(id_.slot, id_.generation, coalescer_.hold_until_ns());
    return;
  }
  BatchPlan plan = plan_batch(up_, kMaxBatchBytes, offset);
  switch (plan.status) {
    case BatchPlan::Status::Ready:
      coalescer_.sent(plan.bytes, now);
      request.set(0, plan.bytes, fill_from_up(offset));
      in_flight_ = InFlight::Data;
      in_flight_bytes_ = plan.bytes;
      if (extension_) count_request_locked(sent_end_ + plan.bytes);
      stream_->write();
      return;
    case BatchPlan::Status::Corrupt:
      log::error("corrupt BGP framing in the up ring, killing the session",
                 {{"session-id", id_.session_id}, {"error", plan.error}});
      begin_kill_locked(ipc::SessionEnd::Invalid);
      pump_up_locked();
      return;
    case BatchPlan::Status::Incomplete:
      if (closed == shm::RingClose::Eof) {
        log::error("up ring ended inside a BGP message, killing the session",
                   {{"session-id", id_.session_id}});
        begin_kill_locked(ipc::SessionEnd::Invalid);
        pump_up_locked();
        return;
      }
      break;
    case BatchPlan::Status::Empty:
      if (closed == shm::RingClose::Eof) {
        // The device finished: half-close; the backend ends the stream.
        writes_done_ = true;
        stream_->writes_done();
        return;
      }
      break;
  }
  // Nothing to send: sleep until the listener publishes more. It wakes us
  // only when it sees our flag (ring.h); bytes published before the flag
  // was set are seen here. In every other state above something else
  // brings us back (a write or an acknowledgement completing, the stream's
  // metadata, a ring closing, which always wakes).
  if (up_.wait_for_bytes(seen_write)) pump_up_locked();
}

void Session::response_delivered_locked() {
  ++counter_down_;
  slot().data_responses.store(counter_down_, std::memory_order_release);
}

void Session::count_request_locked(uint64_t end) {
  ++counter_up_;
  ledger_.record_request(counter_up_, end);  // before the count: see layout.h
  sent_end_ = end;
  slot().data_requests.store(counter_up_, std::memory_order_release);
}

bool Session::acknowledged_locked(uint64_t count) {
  if (count > counter_up_) return false;
  if (count <= acked_up_) return true;  // nothing new
  auto end = ledger_.end_of(count);
  if (!end || *end > sent_end_) return false;
  uint64_t read = up_.read_pos();
  if (*end > read) {
    up_.consume(static_cast<size_t>(*end - read));
    // Space freed in up: only a listener that stopped reading needs to know.
    if (up_.producer_wants_wake()) notify_listener();
  }
  acked_up_ = count;
  return true;
}

void Session::pump_down_locked() {
  if (down_holding_) {
    const pb::DataResponse& response = stream_->incoming();
    DownCopy::Progress progress;
    bool wrote = false;
    for (;;) {
      const uint64_t seen_read = down_.read_pos();  // before the copy: see below
      progress = down_copy_.copy(response, down_);
      wrote |= progress.wrote;
      // Ring full: the listener wakes us when it frees space, if it sees
      // our flag (ring.h); space freed before the flag was set is seen here.
      if (progress.complete || !down_.wait_for_space(seen_read)) break;
    }
    if (progress.complete) {
      down_holding_ = false;
      response_delivered_locked();  // counted before the listener is woken
      if (response.ByteSizeLong() > kKeepBufferBytes) stream_->incoming() = pb::DataResponse();
    }
    // Only a listener that drained the ring and sleeps needs the wake-up.
    if (wrote && down_.consumer_wants_wake()) notify_listener();
    if (!progress.complete) return;  // no new read until it is all in
  }
  if (!read_in_flight_ && !read_closed_ && !stream_->let_go_done()) {
    read_in_flight_ = true;
    stream_->read();
  }
}

void Session::on_stream_metadata(DataStream& stream, bool ok) {
  std::lock_guard lock(mu_);
  if (&stream != stream_.get() || phase_ != Phase::Streaming || !ok) return;
  Metadata md = stream_->server_metadata();
  if (md.empty()) {
    // gRPC's completion-queue API reports initial metadata as received,
    // and empty, also for a stream that failed before any arrived (e.g.
    // headers beyond the size limit): then the first read fails at once and
    // the stream is resumed. Judged as sent (no counters: KILL) only if the
    // stream is still there after a grace period.
    metadata_wait_at_ns_ = monotonic_ns() + kUnreadableGraceNs;
    env_.wake_at(id_.slot, id_.generation, metadata_wait_at_ns_);
    return;
  }
  judge_metadata_locked(md);
}

void Session::judge_metadata_locked(const Metadata& md) {
  metadata_wait_at_ns_ = 0;
  publish_slot_locked(&md);
  slot().data_since_ns.store(realtime_ns(), std::memory_order_relaxed);
  slot().data_connected.store(1, std::memory_order_relaxed);
  StreamOpenVerdict verdict =
      judge_stream_open(md, open_counter_up_, open_counter_down_,
                        ledger_.kept_from(open_counter_up_, up_.read_pos()));
  const auto& server_up = verdict.server_up_text;
  const auto& server_down = verdict.server_down_text;
  uint64_t up = verdict.server_up, down = verdict.server_down;
  bool extension = verdict.extension;
  const resume::Decision& d = verdict.decision;
  // A counter sent twice cannot be trusted either way (metadata_value reads
  // the first); treated like an unreadable one.
  auto times = [&md](std::string_view key) {
    return std::count_if(md.begin(), md.end(), [key](const auto& kv) { return kv.first == key; });
  };
  bool repeated = times("counter-up") > 1 || times("counter-down") > 1;
  if (d.kill || repeated) {
    bool unreadable = repeated || !server_up || !server_down || !parse_counter(*server_up) ||
                      !parse_counter(*server_down);
    shm::count(env_.control->bad_input, unreadable ? bad_input::Backend::DataBadCounters
                                                   : bad_input::Backend::DataCountersDisagree);
    log::warn("Data stream counters disagree with the backend, killing the session",
              {{"session-id", id_.session_id},
               {"counter-up", open_counter_up_},
               {"counter-down", open_counter_down_},
               {"server-counter-up", server_up.value_or("missing")},
               {"server-counter-down", server_down.value_or("missing")},
               {"resume-extension", extension ? "true" : "false"},
               {"reason", repeated ? "counters sent more than once" : d.why}});
    env_.control->counters.data_streams_failed.fetch_add(1, std::memory_order_relaxed);
    begin_kill_locked(ipc::SessionEnd::UplinkError);
    pump_locked();
    return;
  }
  metadata_seen_ = true;
  extension_ = extension;
  give_up_at_ns_ = 0;
  reopen_backoff_.reset();
  if (extension) {
    acked_up_ = 0;
    acknowledged_locked(up);  // what the backend counted is safe with it
    acked_down_sent_ = open_counter_down_;
    if (d.resend_from) {
      resend_next_ = d.resend_from;
      resend_to_ = d.resend_to;
    }
    if (d.resend_from || down > open_counter_down_ || down_skip_)
      log::info("resuming the Data stream",
                {{"session-id", id_.session_id},
                 {"resending-requests", d.resend_from ? d.resend_to - d.resend_from + 1 : 0},
                 {"backend-resends", down - open_counter_down_},
                 {"response-bytes-already-delivered", down_skip_}});
  } else {
    // The interface's rule: equal counters, nothing to resend, nothing kept.
    down_skip_ = 0;
    uint64_t read = up_.read_pos();
    if (sent_end_ > read) {
      up_.consume(static_cast<size_t>(sent_end_ - read));
      if (up_.producer_wants_wake()) notify_listener();  // space freed in up
    }
    acked_up_ = counter_up_;
  }
  pump_locked();
}

void Session::on_stream_read(DataStream& stream, bool ok) {
  std::lock_guard lock(mu_);
  if (&stream != stream_.get() || phase_ != Phase::Streaming) return;
  read_in_flight_ = false;
  if (!ok) {
    // The backend ended the stream (or it broke); let_go() brings the status.
    read_closed_ = true;
    let_go_locked();
    // gRPC also says !ok for a DataResponse it could not parse, and then
    // the call stays open: the session would stall until the backend gave
    // up on it. A stream that really ended is done long before this.
    unreadable_at_ns_ = monotonic_ns() + kUnreadableGraceNs;
    env_.wake_at(id_.slot, id_.generation, unreadable_at_ns_);
    return;
  }
  const pb::DataResponse& response = stream_->incoming();
  if (end_reason_) {  // ending: drain the stream, relay nothing
    pump_down_locked();
    return;
  }
  ResponseReading reading = read_response(response, extension_);
  if (reading.kind == ResponseKind::Ack) {
    const std::optional<uint64_t>& count = reading.ack_count;
    if (!count || !acknowledged_locked(*count)) {
      shm::count(env_.control->bad_input, bad_input::Backend::DataInvalidAck);
      log::warn("invalid acknowledgement from the backend, killing the session",
                {{"session-id", id_.session_id},
                 {"acknowledged", count ? std::to_string(*count) : "unreadable"},
                 {"counter-up", counter_up_}});
      begin_kill_locked(ipc::SessionEnd::UplinkError);
    }
    pump_locked();
    return;
  }
  if (reading.kind == ResponseKind::Kill) {
    shm::count(env_.control->bad_input, bad_input::BackendAction::Kill);
    response_delivered_locked();
    log::info("backend killed the session",
              {{"session-id", id_.session_id}, {"device_ip", device_ip()}});
    env_.control_client->forget("BGP", device_ip());
    end_reason_ = ipc::SessionEnd::BackendKilled;
    close_down_locked(shm::RingClose::Abort);
    stream_->cancel();
    let_go_locked();
    return;
  }
  if (!pb::DataAction_IsValid(response.action())) {
    // Not in the interface: whatever the backend meant (a newer action?),
    // relaying its bytes as if it had said "carry on" could desynchronise
    // the BGP session. The side that finds a disagreement sends KILL.
    shm::count(env_.control->bad_input, bad_input::Backend::DataUnknownAction);
    log::warn("unknown action from the backend on the Data stream, killing the session",
              {{"session-id", id_.session_id},
               {"device_ip", device_ip()},
               {"action", static_cast<int64_t>(response.action())}});
    begin_kill_locked(ipc::SessionEnd::UplinkError);
    pump_locked();
    return;
  }
  if (reading.restart && restart_ == Restart::None) {
    shm::count(env_.control->bad_input, bad_input::BackendAction::Restart);
    log::info("backend asked for a graceful restart of the Data stream",
              {{"session-id", id_.session_id}});
    restart_ = Restart::Requested;
  }
  if (response.data_size() > 0) {
    down_holding_ = true;
    // A resent DataResponse may start with bytes in the down ring already.
    uint64_t skip = std::exchange(down_skip_, 0);
    if (skip == 0) ledger_.begin_response(counter_down_ + 1, down_.write_pos());
    down_copy_.start(response, skip);
  } else {
    response_delivered_locked();
  }
  pump_locked();
}

void Session::on_stream_write(DataStream& stream, bool ok) {
  std::lock_guard lock(mu_);
  if (&stream != stream_.get() || phase_ != Phase::Streaming) return;
  InFlight done = std::exchange(in_flight_, InFlight::None);
  // The request's buffer goes now (gRPC holds its own reference while it
  // still needs the bytes): idle sessions keep no batch-sized buffer.
  stream_->outgoing().clear();
  // Not ok: the stream broke; the bytes stay in the ring and the status follows.
  if (!ok) return;
  if (!extension_ && done != InFlight::Ack && done != InFlight::Resend) {
    // The interface's rule: a DataRequest counts once gRPC took it, and its
    // bytes are not kept.
    count_request_locked(sent_end_ + (done == InFlight::Data ? in_flight_bytes_ : 0));
    if (done == InFlight::Data) {
      up_.consume(in_flight_bytes_);
      if (up_.producer_wants_wake()) notify_listener();  // space freed in up
    }
    acked_up_ = counter_up_;
  }
  switch (done) {
    case InFlight::Data:
      region_->up.messages.fetch_add(1, std::memory_order_relaxed);
      break;
    case InFlight::Resend:
      if (++resend_next_ > resend_to_) resend_next_ = resend_to_ = 0;
      break;
    case InFlight::Ack:
      break;
    case InFlight::Kill:
    case InFlight::Restart:
      if (done == InFlight::Restart) restart_ = Restart::Sent;
      if (!stream_->let_go_done()) {
        writes_done_ = true;
        stream_->writes_done();
      }
      break;
    case InFlight::None:
      break;
  }
  pump_locked();
}

void Session::on_stream_done(DataStream& stream, const grpc::Status& status) {
  std::lock_guard lock(mu_);
  if (&stream != stream_.get()) return;
  std::shared_ptr<DataStream> finished = std::move(stream_);
  env_.control->counters.data_streams_open.fetch_sub(1, std::memory_order_relaxed);
  if (phase_ == Phase::Done) return;
  slot().data_connected.store(0, std::memory_order_relaxed);
  if (end_reason_) {
    close_down_locked(shm::RingClose::Abort);
    finish_locked(*end_reason_);
    return;
  }
  if (status.ok()) {
    if (restart_ != Restart::None) {
      env_.control->counters.grpc_reconnects.fetch_add(1, std::memory_order_relaxed);
      open_stream_locked(true);
      return;
    }
    // Everything the backend sent is in the down ring (reads stop while a
    // response is only partly delivered, and the stream cannot end before
    // all reads were made).
    close_down_locked(shm::RingClose::Eof);
    finish_locked(ipc::SessionEnd::BackendClosed);
    return;
  }
  log::warn("Data stream failed",
            {{"session-id", id_.session_id},
             {"device_ip", device_ip()},
             {"code", status_code_name(status.error_code())},
             {"error", redact(status.error_message(), env_.config->agent.token)}});
  env_.control->counters.data_streams_failed.fetch_add(1, std::memory_order_relaxed);
  if (oversized_message(status)) {
    // gRPC refused a DataResponse beyond the message limit. A resumed
    // stream would get the same response again, so the session ends now
    // (the backend drops its side after its grace period).
    shm::count(env_.control->bad_input, bad_input::Backend::DataOversized);
    log::warn("the backend sent a DataResponse larger than the message limit, ending the session",
              {{"session-id", id_.session_id}, {"device_ip", device_ip()}});
    close_down_locked(shm::RingClose::Abort);
    finish_locked(ipc::SessionEnd::UplinkError);
    return;
  }
  if (retryable(status)) {
    schedule_reopen_locked(status);
    return;
  }
  close_down_locked(shm::RingClose::Abort);
  finish_locked(ipc::SessionEnd::UplinkError);
}

bool Session::oversized_message(const grpc::Status& status) {
  // gRPC's own words for a received message over the channel's limit
  // (grpc_channels.cc): "Received message larger than max (N vs. M)".
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         status.error_message().find("larger than max") != std::string::npos;
}

bool Session::retryable(const grpc::Status& status) const {
  // Transient: the connection broke, the backend restarted its side or is
  // overloaded. The others say the call itself is refused.
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

void Session::schedule_reopen_locked(const grpc::Status& status) {
  int64_t now = monotonic_ns();
  if (give_up_at_ns_ == 0) give_up_at_ns_ = now + kResumeGiveUpNs;
  if (now >= give_up_at_ns_) {
    log::warn("giving up resuming the Data stream",
              {{"session-id", id_.session_id},
               {"device_ip", device_ip()},
               {"code", status_code_name(status.error_code())},
               {"trying-for-s", kResumeGiveUpNs / 1'000'000'000}});
    close_down_locked(shm::RingClose::Abort);
    finish_locked(ipc::SessionEnd::UplinkError);
    return;
  }
  phase_ = Phase::Reconnecting;
  int64_t delay = reopen_backoff_.next_delay_ns();
  reopen_at_ns_ = now + delay;
  env_.wake_at(id_.slot, id_.generation, reopen_at_ns_);
  log::info("Data stream will be resumed", {{"session-id", id_.session_id},
                                            {"in-ms", delay / 1'000'000},
                                            {"counter-up", counter_up_},
                                            {"counter-down", counter_down_}});
}

// ---- timers and teardown -------------------------------------------------------

void Session::release_idle_down_locked() {
  uint64_t w = down_.write_pos();
  if (w != down_pos_at_tick_) {
    down_pos_at_tick_ = w;
    down_dirty_ = true;
    return;  // written since the last tick: not idle yet
  }
  // Drained by the listener, quiet for a tick: give the pages back.
  if (!down_dirty_ || down_.free_space() != shm::kRingCapacity) return;
  down_dirty_ = false;
  down_.release_free_pages();
}

void Session::tick(int64_t now_ns) {
  std::lock_guard lock(mu_);
  if (phase_ != Phase::Done) {
    release_idle_down_locked();
  }
  if (phase_ == Phase::Streaming && coalescer_.holding() && now_ns >= coalescer_.hold_until_ns())
    pump_up_locked();  // a held batch's time is up
  if (phase_ == Phase::Reconnecting) {
    if (reopen_at_ns_ && now_ns >= reopen_at_ns_) {
      env_.control->counters.grpc_reconnects.fetch_add(1, std::memory_order_relaxed);
      open_stream_locked(true);
    }
    return;
  }
  if (stream_ && metadata_wait_at_ns_ && now_ns >= metadata_wait_at_ns_) {
    metadata_wait_at_ns_ = 0;
    if (!metadata_seen_ && !read_closed_ && !stream_->let_go_done()) {
      judge_metadata_locked(stream_->server_metadata());
      return;
    }
  }
  if (stream_ && unreadable_at_ns_ && now_ns >= unreadable_at_ns_) {
    unreadable_at_ns_ = 0;
    shm::count(env_.control->bad_input, bad_input::Backend::DataUnreadable);
    log::warn("the backend's Data stream stopped being readable but did not end (a DataResponse "
              "gRPC could not parse?), cancelling it to resume",
              {{"session-id", id_.session_id}, {"device_ip", device_ip()}});
    stream_->cancel();
    return;
  }
  if (!stream_ || cancel_at_ns_ == 0 || now_ns < cancel_at_ns_ || stream_->let_go_done()) return;
  log::warn("Data stream did not end after KILL, cancelling it",
            {{"session-id", id_.session_id}});
  stream_->cancel();
  let_go_locked();
}

void Session::deny() {
  std::lock_guard lock(mu_);
  if (phase_ == Phase::Done) return;
  if (phase_ == Phase::AwaitControl || !stream_) {
    close_down_locked(shm::RingClose::Abort);
    finish_locked(ipc::SessionEnd::Denied);
    return;
  }
  log::info("device blocked by the backend, killing its session",
            {{"session-id", id_.session_id}, {"device_ip", device_ip()}});
  // The backend's KILL would drop the cached answer; ours leaves the cache
  // alone: it holds the BLOCK_IP that caused this.
  begin_kill_locked(ipc::SessionEnd::Denied);
  pump_locked();
}

void Session::abort() {
  std::lock_guard lock(mu_);
  if (phase_ == Phase::Done) return;
  close_down_locked(shm::RingClose::Abort);
  if (!stream_ || stream_->let_go_done()) {
    finish_locked(ipc::SessionEnd::UplinkError);
    return;
  }
  // A KILL ends the session at the backend now; a cancelled stream would
  // keep its collector connection open for the grace period, waiting for a
  // resume that cannot come (the agent is going away).
  begin_kill_locked(ipc::SessionEnd::UplinkError);
  cancel_at_ns_ = monotonic_ns() + kStopKillGraceNs;
  env_.wake_at(id_.slot, id_.generation, cancel_at_ns_);
  pump_locked();
}

}  // namespace kbgp::uplink
