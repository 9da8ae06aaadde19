#include "uplink/md5_relay.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include "common/log.h"

namespace kbgp::uplink {

Md5Relay::Md5Relay(bool enabled, ControlClient* control, Hooks hooks)
    : enabled_(enabled), control_(control), hooks_(std::move(hooks)) {}

void Md5Relay::on_lookup(const ipc::Md5Lookup& msg, int64_t now) {
  Endpoint device = msg.device.unmapped();
  if (device.family != AF_INET && device.family != AF_INET6) {
    log::warn("TCP-MD5 lookup without a device address");
    return;
  }
  std::string ip = device.address_string();
  if (!enabled_) {
    send_key(device, ipc::Md5KeyOp::Unanswered, true, 0, 0, {});
    return;
  }
  if (asked_.count(ip)) return;  // its answer is under way
  if (asked_.size() >= kMaxAsked) {
    send_key(device, ipc::Md5KeyOp::Unanswered, true, 0, 0, {});
    return;
  }
  asked_[ip] = Asked{device, msg.local.unmapped(), now + kAskedTimeoutNs};
  DeviceQuery query;
  query.device_ip = ip;
  query.device_port = device.port;
  query.proxy_ip = msg.local.unmapped().address_string();
  query.proxy_port = msg.local.port;
  std::weak_ptr<Md5Relay> weak = weak_from_this();
  auto post = hooks_.post;
  control_->lookup(
      query,
      [weak, post, ip](const ControlAnswer* answer, const std::string&) {
        std::optional<ControlAnswer> copy;
        if (answer) copy = *answer;
        post([weak, ip, copy] {
          if (auto self = weak.lock()) self->on_lookup_done(ip, copy ? &*copy : nullptr);
        });
      },
      /*skip_cache=*/true);
  log::debug("TCP-MD5 key lookup sent to Control", {{"device_ip", ip}});
}

void Md5Relay::on_lookup_done(const std::string& ip, const ControlAnswer* answer) {
  // Normally the answer's KeyNotice came first and settled it.
  auto it = asked_.find(ip);
  if (it == asked_.end()) return;
  Asked asked = it->second;
  asked_.erase(it);
  if (!answer) {
    send_key(asked.device, ipc::Md5KeyOp::Unanswered, true, 0, 0, {});
    return;
  }
  auto op = answer->blocked() ? ipc::Md5KeyOp::Blocked : ipc::Md5KeyOp::NoKey;
  send_key(asked.device, op, true, answer->ttl_seconds, answer->device_id, {});
}

void Md5Relay::on_key_notice(KeyNotice& notice) {
  struct Wipe {
    std::string& key;
    ~Wipe() {
      explicit_bzero(key.data(), key.size());
      key.clear();
    }
  } wipe{notice.tcp_md5};
  auto parsed = Endpoint::parse_address(notice.device_ip);
  if (!parsed) return;
  Endpoint device = parsed->unmapped();
  std::string ip = device.address_string();
  auto it = asked_.find(ip);
  bool answers_lookup = it != asked_.end();
  Asked asked;
  if (answers_lookup) {
    asked = it->second;
    asked_.erase(it);
  }
  if (!enabled_) return;
  if (notice.verdict == ControlVerdict::Block) {
    if (answers_lookup && hooks_.deny)
      hooks_.deny(asked.device, asked.local, notice.ttl_seconds, 0);
  } else if (!notice.tcp_md5.empty()) {
    if (notice.tcp_md5.size() > ipc::kMd5MaxKeyLength) {
      log::warn("TCP-MD5: the backend's key for the device is longer than 80 bytes; not "
                "installed",
                {{"device_ip", ip}, {"key-length", notice.tcp_md5.size()}});
      if (answers_lookup) send_key(device, ipc::Md5KeyOp::Unanswered, true, 0, 0, {});
      return;
    }
    if (keyed_.size() < kMaxKeyed) keyed_.insert(ip);
    send_key(device, ipc::Md5KeyOp::Install, answers_lookup, notice.ttl_seconds,
             notice.device_id, notice.tcp_md5);
    return;
  }
  bool had_key = keyed_.erase(ip) > 0;
  if (!answers_lookup && !notice.pushed && !had_key) return;  // a plain device's answer
  send_key(device,
           notice.verdict == ControlVerdict::Block ? ipc::Md5KeyOp::Blocked : ipc::Md5KeyOp::NoKey,
           answers_lookup, notice.ttl_seconds, notice.device_id, {});
}

void Md5Relay::tick(int64_t now) {
  for (auto it = asked_.begin(); it != asked_.end();) {
    if (now < it->second.deadline_ns) {
      ++it;
      continue;
    }
    Endpoint device = it->second.device;
    it = asked_.erase(it);
    send_key(device, ipc::Md5KeyOp::Unanswered, true, 0, 0, {});
  }
}

void Md5Relay::send_key(const Endpoint& device, ipc::Md5KeyOp op, bool answers_lookup,
                        uint32_t ttl_seconds, uint32_t device_id, const std::string& key) {
  auto msg = ipc::make<ipc::InstallMd5Key>(ipc::MsgType::InstallMd5Key);
  msg.device = device;
  msg.device.port = 0;
  msg.op = static_cast<uint32_t>(op);
  msg.answers_lookup = answers_lookup ? 1 : 0;
  msg.ttl_seconds = ttl_seconds;
  msg.device_id = device_id;
  if (op == ipc::Md5KeyOp::Install) {
    msg.key_length = static_cast<uint32_t>(key.size());
    std::memcpy(msg.key, key.data(), key.size());
  }
  if (!hooks_.send || !hooks_.send(&msg, sizeof msg))
    log::error("cannot send a TCP-MD5 key message to the supervisor",
               {{"device_ip", device.address_string()}, {"error", std::strerror(errno)}});
  explicit_bzero(&msg, sizeof msg);
}

}  // namespace kbgp::uplink
