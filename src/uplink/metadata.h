// gRPC metadata the uplink sends and receives, in plain C++ types (no gRPC
// headers, so it is unit-tested): the keys every call carries, the Data call
// keys of proxy-api.md, redaction for logs, and the JSON form of the
// server's initial metadata for the status API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/endpoint.h"
#include "uplink/control_answer.h"

namespace kbgp::uplink {

// Ordered key/value pairs; a key may repeat (several values).
using Metadata = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kRedacted = "<redacted>";

// Who the agent is: sent on both calls.
struct AgentIdentity {
  std::string email;
  std::string token;
  uint32_t site_id = 0;
  std::string version;
  std::string instance;
};

// x-ch-auth-email, x-ch-auth-token and x-ch-auth-api-token (the same token
// under both names, see proxy-api.md), sid, version, instance.
Metadata common_metadata(const AgentIdentity& agent);

struct DataCallInfo {
  std::string proto = "BGP";
  Endpoint device;  // the device's address and port
  Endpoint local;   // the agent's address and port the device reached
  std::string session_id;
  uint64_t counter_up = 0;
  uint64_t counter_down = 0;
  const std::vector<KeyValues>* control_metadata = nullptr;
};

// The Data call's metadata: common keys, the 5-tuple, session-id, counters,
// then every usable key/value of the ControlResponse metadata. Keys the
// backend may not set (invalid names or values, reserved or our own keys) are
// left out and named in `skipped`.
Metadata data_metadata(const AgentIdentity& agent, const DataCallInfo& call,
                       std::vector<std::string>* skipped);

// gRPC's rules for a metadata key / an ASCII value.
bool valid_metadata_key(std::string_view key);
bool valid_metadata_value(std::string_view key, std::string_view value);

// A JSON object key -> [values] (sorted keys) for the log, with every auth
// token value and every occurrence of `secret` replaced by "<redacted>".
std::string redacted_metadata_json(const Metadata& md, const std::string& secret);

// `text` with every occurrence of a non-empty `secret` replaced by
// "<redacted>" (for server error messages that might echo it).
std::string redact(std::string text, const std::string& secret);

// The server's initial metadata as a JSON object key -> [values] in at most
// `max_len` bytes: keys that would not fit are left out whole, so the result
// is always valid JSON.
std::string server_metadata_json(const Metadata& md, size_t max_len);

// The first value of `key`, nullopt when absent.
std::optional<std::string> metadata_value(const Metadata& md, std::string_view key);

// A counter value: decimal digits only, fits in 64 bits.
std::optional<uint64_t> parse_counter(std::string_view text);

}  // namespace kbgp::uplink
