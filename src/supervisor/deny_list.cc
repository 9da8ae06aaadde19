#include "supervisor/deny_list.h"

#include <cstring>

namespace kbgp {

namespace {
constexpr uint32_t kDefaultDenySeconds = 1200;
constexpr uint32_t kMaxDenySeconds = 7 * 24 * 3600;
}  // namespace

std::string DenyList::key(const Endpoint& device) {
  Endpoint e = device.unmapped();
  return std::string(reinterpret_cast<const char*>(e.addr), e.family == AF_INET ? 4 : 16) +
         static_cast<char>(e.family);
}

bool DenyList::add(const Endpoint& device, uint32_t ttl_seconds, int64_t now) {
  if (ttl_seconds == 0) ttl_seconds = kDefaultDenySeconds;
  if (ttl_seconds > kMaxDenySeconds) ttl_seconds = kMaxDenySeconds;
  std::string k = key(device);
  if (until_.size() >= kMaxEntries && !until_.count(k) && expire(now) >= kMaxEntries) return false;
  until_[k] = now + int64_t{ttl_seconds} * 1000000000;
  return true;
}

bool DenyList::denied(const Endpoint& device, int64_t now) const {
  auto it = until_.find(key(device));
  return it != until_.end() && it->second > now;
}

bool DenyList::remove(const Endpoint& device) { return until_.erase(key(device)) > 0; }

void DenyList::for_each(
    const std::function<void(const Endpoint&, int64_t until_mono_ns)>& fn) const {
  for (const auto& [k, until] : until_) {
    Endpoint e;
    e.family = static_cast<uint8_t>(k.back());
    std::memcpy(e.addr, k.data(), k.size() - 1);
    fn(e, until);
  }
}

size_t DenyList::expire(int64_t now) {
  for (auto it = until_.begin(); it != until_.end();) {
    if (it->second <= now)
      it = until_.erase(it);
    else
      ++it;
  }
  return until_.size();
}

}  // namespace kbgp
