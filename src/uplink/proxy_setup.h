// Start-up of the uplink's web proxy support: read HTTPS_PROXY & co. from
// the environment the supervisor passed on, remove them from it so gRPC
// cannot act on them by itself, and start the CONNECT relay when the target
// goes through a proxy (proxy_relay.h explains why).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "uplink/proxy_config.h"
#include "uplink/proxy_relay.h"
#include "uplink/uplink_config.h"

namespace kbgp::uplink {

struct WebProxy {
  ProxySettings settings;             // also for the export client
  std::unique_ptr<ProxyRelay> relay;  // null: gRPC connects directly
};

// Sets config.grpc_proxy when gRPC must use the relay. nullopt (and
// `error`) when a variable is unusable or the relay cannot start.
std::optional<WebProxy> setup_web_proxy(UplinkConfig& config, std::string* error);

}  // namespace kbgp::uplink
