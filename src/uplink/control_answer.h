// What Control said about one device, in plain C++ types: the uplink's cache,
// metadata building and unit tests use it without any protobuf header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kbgp::uplink {

// Values of ControlAction (proxy.proto); kept numerically identical.
enum class ControlVerdict : uint32_t { Allow = 0, Block = 1, Keepalive = 2 };

// One gRPC metadata key and its values (KeyVal in proxy.proto).
struct KeyValues {
  std::string key;
  std::vector<std::string> values;
};

struct ControlAnswer {
  std::string proto;
  std::string device_ip;
  uint32_t device_port = 0;
  std::string proxy_ip;
  uint32_t proxy_port = 0;
  uint32_t ttl_seconds = 0;  // 0 = do not cache
  uint32_t ttl_counter = 0;  // 0 = no limit on uses
  ControlVerdict verdict = ControlVerdict::Allow;
  std::vector<KeyValues> metadata;  // must be sent on the Data call
  uint32_t company_id = 0;
  uint32_t device_id = 0;
  std::string device_name;
  // tcp_md5 is deliberately not kept: the uplink has no use for the key.

  bool blocked() const { return verdict == ControlVerdict::Block; }
  // "1289:router-name" when the backend gave an id, else the name.
  std::string device_label() const {
    if (device_id == 0) return device_name;
    return std::to_string(device_id) + ":" + device_name;
  }
};

}  // namespace kbgp::uplink
