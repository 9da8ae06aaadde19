#include "uplink/control_cache.h"

#include <algorithm>
#include <cstdint>

namespace kbgp::uplink {

void ControlCache::put(const ControlAnswer& answer, int64_t now_ns) {
  Key k = key(answer.proto, answer.device_ip);
  if (answer.ttl_seconds == 0) {
    // The newest word on this device forbids caching; an older cached answer
    // must not outlive it.
    entries_.erase(k);
    return;
  }
  Entry e;
  e.answer = answer;
  e.expires_ns = now_ns + static_cast<int64_t>(answer.ttl_seconds) * 1000000000;
  e.limited = answer.ttl_counter != 0;
  e.uses_left = answer.ttl_counter;
  next_expiry_ns_ = std::min(next_expiry_ns_, e.expires_ns);
  entries_[std::move(k)] = std::move(e);
}

std::optional<ControlAnswer> ControlCache::use(const std::string& proto,
                                               const std::string& device_ip, int64_t now_ns) {
  auto it = entries_.find(key(proto, device_ip));
  if (it == entries_.end()) return std::nullopt;
  Entry& e = it->second;
  if (now_ns >= e.expires_ns || (e.limited && e.uses_left == 0)) {
    entries_.erase(it);
    return std::nullopt;
  }
  ControlAnswer out = e.answer;
  if (e.limited && --e.uses_left == 0) entries_.erase(it);
  return out;
}

bool ControlCache::drop(const std::string& proto, const std::string& device_ip) {
  return entries_.erase(key(proto, device_ip)) > 0;
}

void ControlCache::expire(int64_t now_ns) {
  if (now_ns < next_expiry_ns_) return;
  next_expiry_ns_ = INT64_MAX;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now_ns >= it->second.expires_ns) {
      it = entries_.erase(it);
    } else {
      next_expiry_ns_ = std::min(next_expiry_ns_, it->second.expires_ns);
      ++it;
    }
  }
}

}  // namespace kbgp::uplink
