// Listening sockets, bound by the supervisor (the only process allowed to).
#pragma once

#include <string>

#include "common/endpoint.h"
#include "common/fd.h"

namespace kbgp {

// Binds and listens on a TCP endpoint, non-blocking. An IPv6 wildcard is
// bound IPV6_V6ONLY so that 0.0.0.0:179 and [::]:179 can both be bound, as in
// the default configuration. On failure returns an invalid fd and fills error.
UniqueFd bind_tcp_listener(const Endpoint& where, int backlog, std::string* error);

}  // namespace kbgp
