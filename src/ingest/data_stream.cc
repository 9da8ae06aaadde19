#include "ingest/data_stream.h"

#include <utility>

#include "common/log.h"
#include "common/resume_protocol.h"

namespace kbgp::ingest {

DataStream::DataStream(Backend& backend, DataCallParams params, Device device, std::string email,
                       std::string peer)
    : backend_(backend),
      params_(std::move(params)),
      device_(std::move(device)),
      email_(std::move(email)),
      peer_(std::move(peer)) {}

void DataStream::open(Reactor* reactor) {
  reactor_ = reactor;
  extension_ = params_.resume_extension;
  if (auto existing = backend_.sessions.find(params_.session_id)) {
    resume_session(std::move(existing));
  } else if (params_.counter_up != 0 || params_.counter_down != 0) {
    log::warn("Data stream for an unknown session with nonzero counters, answered KILL",
              {sid(),
               {"device", params_.device.to_string()},
               {"counter_up", params_.counter_up},
               {"counter_down", params_.counter_down},
               {"peer", peer_}});
    send_counters(0, 0);
    send_kill();
    return;
  } else {
    open_new_session();
  }
  maybe_read();
  pump();
}

void DataStream::open_new_session() {
  auto session = std::make_shared<Session>(backend_.sessions, backend_.loop.base(),
                                           params_.session_id, device_,
                                           backend_.options.grace_period_s);
  send_counters(0, 0);
  std::string error;
  if (!session->start(&error)) {
    log::error("collector connect failed", {sid(),
                                            {"device", device_.ip.address_string()},
                                            {"collector", device_.collector.to_string()},
                                            {"source", device_.source.address_string()},
                                            {"error", error}});
    finish(grpc::Status::OK);  // the agent closes the device's connection
    return;
  }
  backend_.sessions.insert(session);
  session_ = session;
  session_->attach(this);
  log::info("Data stream opened", {sid(),
                                   {"device", params_.device.to_string()},
                                   {"device_name", device_.device_name},
                                   {"device_id", device_.device_id},
                                   {"collector", device_.collector.to_string()},
                                   {"source", device_.source.address_string()},
                                   {"proxy", params_.proxy.to_string()},
                                   {"peer", peer_},
                                   {"email", email_},
                                   {"instance", params_.instance}});
}

void DataStream::resume_session(std::shared_ptr<Session> session) {
  if (!session->device().ip.same_address(params_.device)) {
    log::warn("Data stream names a session of another device, refused",
              {sid(), {"device", params_.device.to_string()},
               {"session_device", session->device().ip.address_string()}, {"peer", peer_}});
    finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "session-id belongs to another device"));
    return;
  }
  uint64_t up = session->counter_up();
  uint64_t down = session->counter_down();
  send_counters(up, down);
  auto d = resume::backend_decides(extension_, up, down, params_.counter_up, params_.counter_down,
                                   session->kept_from());
  if (d.kill) {
    log::warn("Data stream resume with disagreeing counters, answered KILL",
              {sid(),
               {"device", params_.device.to_string()},
               {"our_counter_up", up},
               {"our_counter_down", down},
               {"agent_counter_up", params_.counter_up},
               {"agent_counter_down", params_.counter_down},
               {"resume_extension", extension_ ? "true" : "false"},
               {"reason", d.why}});
    session->end("counters disagree on resume", true);
    send_kill();
    return;
  }
  session_ = std::move(session);
  session_->attach(this);
  if (extension_) {
    session_->acknowledge_responses(params_.counter_down);  // the agent has those
    acked_up_sent_ = up;  // our counter-up told the agent
    resend_next_ = d.resend_from;
    resend_to_ = d.resend_to;
  } else {
    session_->drop_kept();
  }
  log::info("Data stream resumed", {sid(),
                                    {"device", params_.device.to_string()},
                                    {"counter_up", up},
                                    {"counter_down", down},
                                    {"agent_resends", params_.counter_up - up},
                                    {"resending", d.resend_from ? d.resend_to - d.resend_from + 1 : 0},
                                    {"buffered_bytes", session_->collector().pending_input()},
                                    {"peer", peer_}});
}

void DataStream::send_counters(uint64_t up, uint64_t down) {
  std::vector<std::pair<std::string, std::string>> md = {
      {"counter-up", std::to_string(up)}, {"counter-down", std::to_string(down)}};
  if (extension_) md.emplace_back(resume::kMetadataKey, resume::kMetadataValue);
  reactor_->send_initial_metadata(md);
}

void DataStream::send_kill() {
  killed_ = true;
  action_pending_ = pb::DATA_ACTION_KILL;
  pump();
}

void DataStream::on_read_done(bool ok, pb::DataRequest request) {
  reading_ = false;
  if (!reactor_ || finishing_) return;
  if (!ok) {
    reads_ended_ = true;
    if (reactor_->cancelled()) {
      stream_broken("stream cancelled");
    } else if (restarting_) {
      maybe_complete_restart();
    } else if (!killed_) {
      on_agent_half_close();
    }
    return;
  }
  if (killed_) return;
  if (static_cast<int>(request.action()) == resume::kActionAck) {
    if (!on_acknowledgement(request)) return;
    pump();
    maybe_read();
    return;
  }
  relay_up(request);
  if (request.action() == pb::DATA_ACTION_KILL) {
    log::info("agent sent KILL", {sid(), {"device", params_.device.to_string()}});
    if (auto s = std::move(session_)) s->end("agent sent KILL", true);
    finish(grpc::Status::OK);
    return;
  }
  if (request.action() == pb::DATA_ACTION_RESTART) start_restart(true);
  if (extension_) pump();  // acknowledges what was just relayed
  maybe_read();
}

bool DataStream::on_acknowledgement(const pb::DataRequest& request) {
  std::optional<uint64_t> count;
  if (extension_ && request.data_size() == 1) count = resume::decode_ack(request.data(0));
  if (count && (!session_ || session_->acknowledge_responses(*count))) return true;
  log::warn("invalid acknowledgement from the agent, answered KILL",
            {sid(), {"device", params_.device.to_string()},
             {"acknowledged", count ? std::to_string(*count) : "unreadable"}});
  if (auto s = std::move(session_)) s->end("invalid acknowledgement from the agent", true);
  send_kill();
  return false;
}

void DataStream::relay_up(const pb::DataRequest& request) {
  if (!session_) return;
  size_t bytes = 0;
  for (const auto& chunk : request.data()) {
    bytes += chunk.size();
    session_->collector().write(chunk);
  }
  session_->count_request(bytes);
  unacked_bytes_ += bytes;
}

bool DataStream::ack_due() {
  if (session_->counter_up() <= acked_up_sent_) return false;
  if (session_->counter_up() - acked_up_sent_ >= kAckEveryRequests ||
      unacked_bytes_ >= kAckEveryBytes || ack_delay_over_)
    return true;
  if (!ack_timer_)
    ack_timer_ = std::make_unique<Timer>(backend_.loop.base(), [this] {
      ack_delay_over_ = true;
      pump();
    });
  if (!ack_timer_->armed()) ack_timer_->arm(kAckDelayS);
  return false;
}

void DataStream::on_agent_half_close() {
  agent_closed_ = true;
  log::debug("agent half-closed the Data stream", {sid()});
  if (session_) session_->collector().shutdown_write();
  pump();  // the collector may already be gone
}

void DataStream::start_restart(bool by_agent) {
  if (restarting_ || killed_ || finishing_) return;
  if (!by_agent && agent_closed_) return;  // ending anyway
  restarting_ = true;
  action_pending_ = pb::DATA_ACTION_RESTART;
  log::info("restarting Data stream", {sid(),
                                       {"device", params_.device.to_string()},
                                       {"initiator", by_agent ? "agent" : "backend"}});
  restart_timer_ = std::make_unique<Timer>(backend_.loop.base(), [this] {
    log::warn("Data stream restart timed out waiting for the agent", {sid()});
    release_session(true);
    finish(grpc::Status::OK);
  });
  restart_timer_->arm(kRestartTimeoutS);
  pump();
}

void DataStream::maybe_complete_restart() {
  if (!restarting_ || !restart_sent_ || !reads_ended_) return;
  log::info("Data stream restarted, session kept for a resume", {sid()});
  release_session(true);
  finish(grpc::Status::OK);
}

void DataStream::pump() {
  if (!reactor_ || writing_ || finishing_) return;
  if (action_pending_ != pb::DATA_ACTION_UNSPECIFIED) {
    pb::DataResponse r;
    r.set_action(action_pending_);
    action_inflight_ = std::exchange(action_pending_, pb::DATA_ACTION_UNSPECIFIED);
    writing_ = true;
    write_kind_ = Write::Action;
    // Extension: counted (and kept, as an empty message) when first written.
    if (extension_ && session_) session_->count_kept_response({});
    reactor_->write(std::move(r));
    return;
  }
  if (killed_ || restarting_ || !session_) return;
  if (extension_ && ack_due()) {
    // Lets the agent forget the DataRequests we relayed.
    acked_up_sent_ = session_->counter_up();
    unacked_bytes_ = 0;
    ack_delay_over_ = false;
    if (ack_timer_) ack_timer_->cancel();
    pb::DataResponse r;
    r.set_action(static_cast<pb::DataAction>(resume::kActionAck));
    r.add_data(resume::encode_ack(acked_up_sent_));
    writing_ = true;
    write_kind_ = Write::Ack;
    reactor_->write(std::move(r));
    return;
  }
  if (resend_next_ != 0) {
    // A DataResponse the agent missed, exactly as first sent.
    pb::DataResponse r;
    const std::string& kept = session_->kept_response(resend_next_);
    if (!kept.empty()) r.add_data(kept);
    writing_ = true;
    write_kind_ = Write::Resend;
    reactor_->write(std::move(r));
    return;
  }
  // Extension: nothing new while the agent has not acknowledged enough
  // (its acknowledgements call pump() again).
  if (extension_ && session_->keep_window_full()) return;
  CollectorConnection& c = session_->collector();
  if (c.pending_input() > 0) {
    pb::DataResponse r;
    if (extension_) {
      std::string bytes = c.read(kMaxMessageBytes);
      r.add_data(bytes);
      session_->count_kept_response(std::move(bytes));
    } else {
      inflight_ = c.read(kMaxMessageBytes);
      r.add_data(inflight_);
    }
    writing_ = true;
    write_kind_ = Write::Data;
    reactor_->write(std::move(r));
    return;
  }
  if (c.closed()) {
    // Everything the collector sent has been handed to gRPC.
    auto s = std::move(session_);
    std::string reason = s->collector_close_reason();
    s->end(agent_closed_ ? "agent half-closed, then " + reason : reason, false);
    finish(grpc::Status::OK);
  }
}

void DataStream::on_write_done(bool ok) {
  writing_ = false;
  std::string bytes = std::move(inflight_);
  inflight_.clear();
  pb::DataAction action = std::exchange(action_inflight_, pb::DATA_ACTION_UNSPECIFIED);
  Write kind = write_kind_;
  if (!reactor_) return;
  if (finishing_) {
    // finish() already let go of the session (and took back these bytes).
    std::exchange(reactor_, nullptr)->finish(finish_status_);
    return;
  }
  if (!ok) {
    // Extension: what was written is kept and counted; a resume resends it.
    if (session_ && !bytes.empty()) session_->collector().unread(bytes);
    stream_broken("write failed");
    return;
  }
  if (session_ && !extension_ && (kind == Write::Data || kind == Write::Action))
    session_->count_response(bytes.size());
  if (kind == Write::Resend && ++resend_next_ > resend_to_) resend_next_ = resend_to_ = 0;
  if (action == pb::DATA_ACTION_KILL) {
    finish(grpc::Status::OK);
    return;
  }
  if (action == pb::DATA_ACTION_RESTART) {
    restart_sent_ = true;
    maybe_complete_restart();
    if (finishing_) return;
  }
  pump();
  maybe_read();
}

void DataStream::maybe_read() {
  if (!reactor_ || reading_ || reads_ended_ || finishing_ || killed_) return;
  // Back-pressure towards the agent, except while restarting: then the
  // agent's half-close must be read, and it sends nothing new.
  if (!restarting_ && session_ &&
      session_->collector().pending_output() > CollectorConnection::kOutputHighMark) {
    return;  // collector_drained() calls again
  }
  reading_ = true;
  reactor_->read();
}

void DataStream::on_cancel() {
  if (!reactor_ || finishing_) return;
  stream_broken("stream cancelled");
}

void DataStream::stream_broken(const std::string& why) {
  log::info("Data stream broke", {sid(), {"device", params_.device.to_string()}, {"reason", why}});
  release_session(true);
  finish(grpc::Status(grpc::StatusCode::CANCELLED, why));
}

void DataStream::session_lost(const std::string& why) {
  if (!session_) return;
  release_session(false);
  finish(grpc::Status(grpc::StatusCode::ABORTED, why));
}

void DataStream::restart_requested() { start_restart(false); }

void DataStream::release_session(bool wait_for_resume) {
  if (!session_) return;
  auto s = std::move(session_);
  if (writing_ && !inflight_.empty()) {
    // Not known to have reached the agent: a resume sends these again.
    s->collector().unread(inflight_);
    inflight_.clear();
  }
  if (wait_for_resume) {
    s->detach(this);
  }
}

void DataStream::finish(grpc::Status status) {
  if (!reactor_ || finishing_) return;
  finishing_ = true;
  restart_timer_.reset();
  ack_timer_.reset();
  release_session(true);  // no-op unless a path forgot to decide
  if (writing_) {
    finish_status_ = std::move(status);  // on_write_done finishes
    return;
  }
  std::exchange(reactor_, nullptr)->finish(std::move(status));
}

}  // namespace kbgp::ingest
