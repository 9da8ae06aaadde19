#include "ingest/control_stream.h"

#include <utility>

#include "common/log.h"
#include "ingest/call_auth.h"
#include "ingest/md5_push.h"

namespace kbgp::ingest {

namespace {
constexpr uint32_t kBlockTtlSeconds = 1200;  // the vendor's deny-list period
}

ControlStream::ControlStream(Backend& backend, std::string email, std::string peer,
                             uint32_t site)
    : backend_(backend), email_(std::move(email)), peer_(std::move(peer)), site_(site) {}

void ControlStream::open(Reactor* reactor) {
  reactor_ = reactor;
  backend_.control_streams.insert(this);
  log::debug("Control stream opened", {{"peer", peer_}, {"email", email_}, {"site", site_}});
  if (backend_.options.keepalive_interval_s > 0) {
    keepalive_ = std::make_unique<Timer>(backend_.loop.base(), [this] { on_keepalive_timer(); });
    keepalive_->arm(backend_.options.keepalive_interval_s);
  }
  if (backend_.options.md5_push) {
    push_all_keys();
    // The agent keeps a pushed key for ttl_seconds: renew it in time.
    if (backend_.options.control_ttl_s > 0) {
      key_refresh_ = std::make_unique<Timer>(backend_.loop.base(),
                                             [this] { on_key_refresh_timer(); });
      key_refresh_->arm(backend_.options.control_ttl_s / 2.0);
    }
  }
  maybe_read();
}

void ControlStream::push_all_keys() {
  auto registry = backend_.config.registry();
  // Only the first push sets the base for registry_reloaded(): a refresh
  // that runs between a reload and its notification must not hide the
  // devices that left the registry from the diff.
  if (!pushed_from_) pushed_from_ = registry;
  auto devices = keyed_devices(*registry, site_);
  for (const Device* d : devices) {
    enqueue(device_answer(*d));
    log::debug("pushed a TCP-MD5 key", {{"device_ip", d->ip.address_string()},
                                        {"device_id", d->device_id},
                                        {"site", site_},
                                        {"peer", peer_}});
  }
}

void ControlStream::on_key_refresh_timer() {
  if (!reactor_ || finish_status_) return;
  push_all_keys();
  key_refresh_->arm(backend_.options.control_ttl_s / 2.0);
}

void ControlStream::registry_reloaded() {
  if (!reactor_ || finish_status_ || !backend_.options.md5_push || !pushed_from_) return;
  auto now = backend_.config.registry();
  auto changes = key_changes(*pushed_from_, *now, site_);
  pushed_from_ = now;
  for (const auto& c : changes) {
    enqueue(c.device ? device_answer(*c.device) : block_answer(c.device_ip));
    log::info(c.device ? (c.device->md5_key.empty() ? "pushed: TCP-MD5 key removed"
                                                    : "pushed: TCP-MD5 key changed")
                       : "pushed: device with a TCP-MD5 key left the registry (BLOCK_IP)",
              {{"device_ip", c.device_ip}, {"site", site_}, {"peer", peer_}});
  }
}

pb::ControlResponse ControlStream::block_answer(const std::string& device_ip) {
  pb::ControlResponse r;
  r.set_proto("BGP");
  r.set_device_ip(device_ip);
  r.set_action(pb::CONTROL_ACTION_BLOCK_IP);
  r.set_ttl_seconds(kBlockTtlSeconds);
  return r;
}

pb::ControlResponse ControlStream::device_answer(const Device& d) const {
  pb::ControlResponse r;
  r.set_proto("BGP");
  r.set_device_ip(d.ip.address_string());
  r.set_action(pb::CONTROL_ACTION_UNSPECIFIED);
  r.set_ttl_seconds(backend_.options.control_ttl_s);
  r.set_ttl_counter(backend_.options.control_ttl_counter);
  r.set_company_id(d.company_id);
  r.set_device_id(d.device_id);
  r.set_device_name(d.device_name);
  if (!d.md5_key.empty()) r.set_tcp_md5(d.md5_key);
  auto* pin = r.add_metadata();
  pin->set_key("backend-pin");
  pin->add_val(backend_.backend_pin);
  auto* id = r.add_metadata();
  id->set_key("device-id");
  id->add_val(std::to_string(d.device_id));
  return r;
}

pb::ControlResponse ControlStream::answer(const pb::ControlRequest& req) const {
  pb::ControlResponse r;
  r.set_proto(req.proto());
  r.set_device_ip(req.device_ip());
  r.set_device_port(req.device_port());
  r.set_proxy_ip(req.proxy_ip());
  r.set_proxy_port(req.proxy_port());
  if (req.action() == pb::CONTROL_ACTION_KEEPALIVE) {
    r.set_action(pb::CONTROL_ACTION_KEEPALIVE);
    return r;
  }
  auto registry = backend_.config.registry();
  const Device* d = registry->find(req.device_ip(), site_);
  if (!d) {
    r.set_action(pb::CONTROL_ACTION_BLOCK_IP);
    r.set_ttl_seconds(kBlockTtlSeconds);
    log::info("unknown device, answered BLOCK_IP",
              {{"device_ip", log_safe(req.device_ip())},
               {"proto", log_safe(req.proto())},
               {"site", site_},
               {"peer", peer_},
               {"email", email_},
               {"ttl_seconds", kBlockTtlSeconds}});
    return r;
  }
  // The registered device's answer, for the 5-tuple as asked.
  r = device_answer(*d);
  r.set_proto(req.proto());
  r.set_device_ip(req.device_ip());
  r.set_device_port(req.device_port());
  r.set_proxy_ip(req.proxy_ip());
  r.set_proxy_port(req.proxy_port());
  log::debug("control answer", {{"device_ip", d->ip.address_string()},
                                {"device_id", d->device_id},
                                {"device_name", d->device_name},
                                {"site", site_},
                                {"peer", peer_}});
  return r;
}

void ControlStream::on_read_done(bool ok, pb::ControlRequest request) {
  reading_ = false;
  if (!reactor_ || finish_status_) return;
  if (!ok) {
    reads_ended_ = true;
    if (reactor_->cancelled()) {
      finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
    } else {
      // The agent half-closed: send what is queued, then finish.
      finish(grpc::Status::OK);
    }
    return;
  }
  ++requests_;
  enqueue(answer(request));
  maybe_read();
}

void ControlStream::enqueue(pb::ControlResponse response) {
  queue_.push_back(std::move(response));
  write_next();
}

void ControlStream::write_next() {
  if (!reactor_ || writing_) return;
  if (queue_.empty()) {
    if (finish_status_) {
      log::debug("Control stream ended", {{"peer", peer_}, {"requests", requests_},
                                          {"status", finish_status_->error_message()}});
      backend_.control_streams.erase(this);
      std::exchange(reactor_, nullptr)->finish(*finish_status_);
    }
    return;
  }
  writing_ = true;
  reactor_->write(std::move(queue_.front()));
  queue_.pop_front();
}

void ControlStream::on_write_done(bool ok) {
  writing_ = false;
  if (!reactor_) return;
  if (!ok) {
    queue_.clear();
    finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    return;
  }
  write_next();
  maybe_read();
}

void ControlStream::maybe_read() {
  if (!reactor_ || reading_ || reads_ended_ || finish_status_) return;
  if (queue_.size() >= kMaxQueued) return;  // on_write_done reads again
  reading_ = true;
  reactor_->read();
}

void ControlStream::on_keepalive_timer() {
  if (!reactor_ || finish_status_) return;
  // A client that is not reading does not need more keepalives queued.
  if (queue_.empty() && !writing_) {
    pb::ControlResponse ka;
    ka.set_action(pb::CONTROL_ACTION_KEEPALIVE);
    enqueue(std::move(ka));
  }
  keepalive_->arm(backend_.options.keepalive_interval_s);
}

void ControlStream::on_cancel() {
  if (!reactor_) return;
  queue_.clear();
  finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
}

void ControlStream::shut_down() {
  queue_.clear();
  finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "backend shutting down"));
}

void ControlStream::finish(grpc::Status status) {
  if (!reactor_) return;
  if (!finish_status_) finish_status_ = std::move(status);
  keepalive_.reset();
  key_refresh_.reset();
  if (reactor_->cancelled()) queue_.clear();  // nobody will read them
  write_next();  // drains the queue (after an outstanding write), then finishes
}

}  // namespace kbgp::ingest
