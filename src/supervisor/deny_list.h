// Device addresses the backend told us to refuse (CONTROL_ACTION_BLOCK_IP),
// each until its ttl runs out. Connections from them are closed right after
// accept, without asking the backend again.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "common/endpoint.h"

namespace kbgp {

class DenyList {
 public:
  // At most this many addresses at once: the requests come from the uplink,
  // which must not be able to grow the supervisor's memory without bound.
  static constexpr size_t kMaxEntries = 65536;

  // Deny `device` (address only) until now + ttl_seconds. A ttl of 0 is
  // taken as the interface's default of 1200 s: the backend asked to block.
  // False (nothing changed) when the list is full of live entries.
  bool add(const Endpoint& device, uint32_t ttl_seconds, int64_t now_mono_ns);
  bool denied(const Endpoint& device, int64_t now_mono_ns) const;
  // Lifts a deny (the backend now accepts the device); true if there was one.
  bool remove(const Endpoint& device);
  // Every entry: the address (port 0) and its monotonic deadline.
  void for_each(const std::function<void(const Endpoint&, int64_t until_mono_ns)>& fn) const;
  // Forgets expired entries; returns how many remain.
  size_t expire(int64_t now_mono_ns);
  size_t size() const { return until_.size(); }

 private:
  static std::string key(const Endpoint& device);
  std::map<std::string, int64_t> until_;  // address bytes -> monotonic deadline
};

}  // namespace kbgp
