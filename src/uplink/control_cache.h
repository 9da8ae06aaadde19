// Cache of ControlResponses per (proto, device IP, site), as the interface
// allows: an answer may be reused for ttl_seconds (0 = never cached) and at
// most ttl_counter times (0 = no limit). Not thread-safe: the Control client
// guards it with its own mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "uplink/control_answer.h"

namespace kbgp::uplink {

class ControlCache {
 public:
  explicit ControlCache(uint32_t site_id) : site_id_(site_id) {}

  // Stores (or replaces) the answer for its (proto, device_ip). An answer
  // with ttl_seconds 0 may not be cached: it removes any older entry.
  // `now_ns` is CLOCK_MONOTONIC.
  void put(const ControlAnswer& answer, int64_t now_ns);
  // Serves a cached answer, counting one use; nullopt when there is none,
  // it expired, or its uses are spent (the entry is then removed).
  std::optional<ControlAnswer> use(const std::string& proto, const std::string& device_ip,
                                   int64_t now_ns);
  // Removes the entry (a Data KILL); true if there was one.
  bool drop(const std::string& proto, const std::string& device_ip);
  // Removes every expired entry.
  void expire(int64_t now_ns);
  // No entry expires before this (INT64_MAX when empty): expire() has
  // nothing to do until then. An idle agent with a thousand devices would
  // otherwise walk the whole cache every second for nothing.
  int64_t next_expiry() const { return next_expiry_ns_; }
  size_t size() const { return entries_.size(); }

 private:
  using Key = std::tuple<std::string, std::string, uint32_t>;  // proto, ip, site
  struct Entry {
    ControlAnswer answer;
    int64_t expires_ns = 0;
    uint32_t uses_left = 0;  // meaningful when limited
    bool limited = false;
  };
  Key key(const std::string& proto, const std::string& device_ip) const {
    return {proto, device_ip, site_id_};
  }

  uint32_t site_id_;
  std::map<Key, Entry> entries_;
  int64_t next_expiry_ns_ = INT64_MAX;
};

}  // namespace kbgp::uplink
