// The HTTP/1.1 CONNECT exchange, both sides, without I/O: the request kbgp
// sends to the operator's proxy, the request gRPC sends to the relay, and the
// response heads. Heads are bounded (kMaxHeadBytes); anything beyond is an
// error, never a reallocation loop.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "uplink/proxy_config.h"

namespace kbgp::uplink {

constexpr size_t kMaxHeadBytes = 16 * 1024;

// Where the head ends ("\r\n\r\n", or "\n\n" from sloppy proxies): the
// offset of the first byte after it, or 0 while incomplete.
size_t head_length(std::string_view buffer);

// "CONNECT target HTTP/1.1" with Host, Proxy-Authorization (when the proxy
// URL has credentials) and User-Agent.
std::string connect_request(std::string_view target, const ProxyUrl& proxy,
                            std::string_view user_agent);

struct ResponseHead {
  int status = 0;          // e.g. 200, 407
  std::string reason;      // "Proxy Authentication Required"
  std::string proxy_authenticate;  // the challenge, if any (for the log line)
};
// Parses "HTTP/1.x CODE reason" and the headers we care about; nullopt when
// the head is not an HTTP response.
std::optional<ResponseHead> parse_response_head(std::string_view head);

struct ConnectRequest {
  std::string target;         // authority of the CONNECT line
  std::string authorization;  // Proxy-Authorization value, whitespace-trimmed
};
// Parses a client's "CONNECT host:port HTTP/1.x" head; nullopt for any
// other method or a malformed head.
std::optional<ConnectRequest> parse_connect_request(std::string_view head);

// Human words for a proxy status, for log lines ("wrong user or password").
std::string proxy_status_hint(int status);

}  // namespace kbgp::uplink
