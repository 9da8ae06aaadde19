#include "ingest/session.h"

#include <utility>

#include "common/log.h"
#include "common/resume_protocol.h"
#include "common/timeutil.h"
#include "ingest/session_table.h"

namespace kbgp::ingest {

Session::Session(SessionTable& table, event_base* base, std::string id, Device device,
                 uint32_t grace_period_s)
    : table_(table),
      id_(std::move(id)),
      device_(std::move(device)),
      grace_period_s_(grace_period_s),
      collector_(base, *this),
      grace_timer_(base, [this] { end("no resume within the grace period", false); }),
      started_ns_(monotonic_ns()) {}

Session::~Session() = default;

bool Session::start(std::string* error) {
  if (!collector_.connect(device_.source, device_.collector, error)) return false;
  collector_.set_input_limit(kAttachedInputLimit);
  return true;
}

void Session::count_kept_response(std::string data) {
  count_response(data.size());
  kept_bytes_ += data.size();
  kept_.push_back(std::move(data));
}

bool Session::acknowledge_responses(uint64_t count) {
  if (count > counter_down_) return false;
  while (kept_from() < count && !kept_.empty()) {
    kept_bytes_ -= kept_.front().size();
    kept_.pop_front();
  }
  return true;
}

bool Session::keep_window_full() const {
  return kept_.size() + 1 >= resume::kWindowMessages || kept_bytes_ >= resume::kBackendWindowBytes;
}

void Session::drop_kept() {
  kept_.clear();
  kept_bytes_ = 0;
}

void Session::attach(SessionStream* s) {
  if (stream_ && stream_ != s) {
    SessionStream* old = stream_;
    stream_ = nullptr;
    old->session_lost("session resumed on another Data stream");
  }
  stream_ = s;
  grace_timer_.cancel();
  collector_.set_input_limit(kAttachedInputLimit);
}

void Session::detach(SessionStream* s) {
  if (stream_ != s || ended_) return;
  stream_ = nullptr;
  if (grace_period_s_ == 0) {
    end("Data stream ended and --grace-period is 0", false);
    return;
  }
  if (collector_.pending_input() > kDetachedBufferLimit) {
    end("collector sent more than the resume buffer holds", false);
    return;
  }
  // Keep reading the collector (its BGP keepalives must not stall) into a
  // bounded buffer until a resume or the grace period ends.
  collector_.set_input_limit(0);
  grace_timer_.arm(grace_period_s_);
  log::info("Data stream detached, waiting for a resume",
            {{"session_id", id_}, {"device", device_.ip.address_string()},
             {"grace_period_s", grace_period_s_}});
}

void Session::end(const std::string& reason, bool reset) {
  if (ended_) return;
  auto self = shared_from_this();  // the table may hold the last reference
  ended_ = true;
  grace_timer_.cancel();
  collector_.close(reset);
  log::info("session ended",
            {{"session_id", id_},
             {"device", device_.ip.address_string()},
             {"device_name", device_.device_name},
             {"collector", device_.collector.to_string()},
             {"reason", reason},
             {"bytes_up", bytes_up_},
             {"bytes_down", bytes_down_},
             {"requests", counter_up_},
             {"responses", counter_down_},
             {"duration_s", (monotonic_ns() - started_ns_) / 1000000000}});
  if (SessionStream* s = std::exchange(stream_, nullptr)) s->session_lost(reason);
  table_.erase(id_);
}

void Session::on_collector_connected() {
  log::debug("collector connected", {{"session_id", id_},
                                     {"collector", device_.collector.to_string()},
                                     {"source", device_.source.address_string()}});
}

void Session::on_collector_readable() {
  if (stream_) {
    stream_->collector_readable();
  } else if (collector_.pending_input() > kDetachedBufferLimit) {
    end("collector sent more than the resume buffer holds", false);
  }
}

void Session::on_collector_drained() {
  if (stream_) stream_->collector_drained();
}

void Session::on_collector_closed(bool error, const std::string& reason) {
  close_reason_ = reason;
  if (error) {
    log::error(collector_.connected() ? "collector connection failed" : "collector connect failed",
               {{"session_id", id_},
                {"device", device_.ip.address_string()},
                {"collector", device_.collector.to_string()},
                {"source", device_.source.address_string()},
                {"error", reason}});
  } else {
    log::debug("collector closed the connection",
               {{"session_id", id_}, {"collector", device_.collector.to_string()}});
  }
  // An attached stream sends what is left and ends the session; a detached
  // session keeps the bytes for a resume until the grace period ends.
  if (stream_) stream_->collector_readable();
}

}  // namespace kbgp::ingest
