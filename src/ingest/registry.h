// The device registry: which devices the backend serves and where each
// device's BGP session terminates.
//   {"devices": [{"device_ip": "127.0.0.3", "site_id": 0, "company_id": 1001,
//                 "device_id": 3, "device_name": "router3", "md5_key": "",
//                 "collector": "127.0.0.1:17902", "source_ip": "127.0.0.3"}]}
// Required: device_ip, company_id, device_id, device_name, collector.
// Optional: site_id (0), md5_key (none), source_ip (device_ip).
// An immutable snapshot; the backend swaps in a new one on SIGHUP.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/endpoint.h"

namespace kbgp::ingest {

// Linux TCP_MD5SIG_MAXKEYLEN.
inline constexpr size_t kMaxMd5KeyLength = 80;

struct Device {
  Endpoint ip;  // port 0
  uint32_t site_id = 0;
  uint32_t company_id = 0;
  uint32_t device_id = 0;
  std::string device_name;
  std::string md5_key;  // empty = none
  Endpoint collector;   // address + port of the collector's BGP daemon
  Endpoint source;      // local address to connect from (port 0)
};

class Registry {
 public:
  static std::optional<Registry> parse(const std::string& text, std::string* error);
  static std::optional<Registry> load(const std::string& path, std::string* error);

  // The entry for `ip` in `site`: with site != 0 only an entry with that
  // site_id matches; with site == 0 (the agent's "any site") the first entry
  // with that address matches. IPv4-mapped IPv6 addresses match IPv4 ones.
  const Device* find(const Endpoint& ip, uint32_t site) const;
  const Device* find(const std::string& ip, uint32_t site) const;

  const std::vector<Device>& devices() const { return devices_; }
  size_t size() const { return devices_.size(); }

 private:
  std::vector<Device> devices_;
};

}  // namespace kbgp::ingest
