// Checks the client metadata of a call before any work is done for it.
// gRPC-free (metadata arrives through a lookup function) so the rules are
// unit-tested without a server.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/endpoint.h"

namespace kbgp::ingest {

// First value of a client metadata key, nullopt if absent.
using MetadataLookup = std::function<std::optional<std::string>(std::string_view key)>;

// How a call is refused; maps 1:1 onto a gRPC status code.
enum class Refusal { None, Unauthenticated, InvalidArgument, FailedPrecondition, PermissionDenied };

// The caller's identity, from x-ch-auth-email and x-ch-auth-token (or
// x-ch-auth-api-token, the key the vendor's agent logs).
struct CallerAuth {
  std::string email;  // may be empty (missing)
  std::string token;  // never logged
};
CallerAuth caller_auth(const MetadataLookup& md);

// The agent's site id from `sid`: absent or empty = 0 (any site).
std::optional<uint32_t> parse_site(const MetadataLookup& md, std::string* error);

// What a Data call announces about the TCP connection it carries.
struct DataCallParams {
  std::string session_id;  // canonical lower-case v4 UUID
  std::string proto;
  Endpoint device;  // device-ip + device-port
  Endpoint proxy;   // proxy-ip + proxy-port
  uint64_t counter_up = 0;    // DataRequests the agent already sent
  uint64_t counter_down = 0;  // DataResponses the agent already received
  uint32_t site = 0;
  std::string instance;  // informational
  std::string version;   // informational
  bool resume_extension = false;  // x-kbgp-resume: 1 (common/resume_protocol.h)
};

struct DataCallCheck {
  Refusal refusal = Refusal::None;
  std::string message;  // for the status and the log when refused
  DataCallParams params;
};

// Everything except credentials and the registry lookup: required keys and
// their syntax, and `backend-pin` (if sent) equal to `backend_pin`.
DataCallCheck check_data_call(const MetadataLookup& md, const std::string& backend_pin);

}  // namespace kbgp::ingest
