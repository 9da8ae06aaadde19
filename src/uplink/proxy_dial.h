// Outbound TCP for the uplink's own connections (the proxy relay's upstream
// side, the export client): name resolution, connect with a deadline, and a
// CONNECT tunnel through the operator's web proxy. gRPC's connections do not
// use this; they reach the proxy through the relay (proxy_relay.h).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "uplink/proxy_config.h"

namespace kbgp::uplink {

// Addresses of `host` (an IP address or a name; names through the system
// resolver, which may block). Empty (and `error`) when none.
std::vector<sockaddr_storage> resolve_host(const std::string& host, uint16_t port,
                                           std::string* error);

// A non-blocking TCP socket with connect() started towards `addr`.
UniqueFd start_connect(const sockaddr_storage& addr, std::string* error);

// "127.0.0.1:3128" / "[::1]:3128".
std::string address_text(const sockaddr_storage& addr);

struct DialResult {
  UniqueFd fd;              // connected (blocking mode); invalid on failure
  std::string error;        // why not
  int proxy_status = 0;     // the proxy's HTTP status when it refused the tunnel
};

// A connection to host:port, through `proxy` (CONNECT, with Basic
// credentials when it has some) or directly when proxy is nullptr. Every
// step is bounded by `deadline_mono_ns`; a set `*cancel` ends the waits
// within 100 ms (name resolution excepted).
DialResult dial(const ProxyUrl* proxy, const std::string& host, uint16_t port,
                std::string_view user_agent, int64_t deadline_mono_ns,
                const std::atomic<bool>* cancel = nullptr);

}  // namespace kbgp::uplink
