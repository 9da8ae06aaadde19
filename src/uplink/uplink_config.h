// The uplink's settings, from UplinkInit and the control region.
#pragma once

#include <cstdint>
#include <string>

#include "uplink/metadata.h"

namespace kbgp::uplink {

struct UplinkConfig {
  std::string target;           // host:port of the backend
  std::string ca_file;          // where the PEM roots came from (for messages)
  std::string ca_pem;           // PEM roots; empty = system store
  std::string tls_server_name;  // overrides the name checked in the certificate
  bool insecure = false;        // plaintext
  uint32_t multi = 10;          // Data streams per gRPC connection
  bool log_export = false;       // the log ring is attached and to be exported
  std::string log_export_url;    // docs/export.md
  std::string metrics_export_url;
  std::string grpc_proxy;       // grpc.http_proxy for the relay (proxy_relay.h); empty = direct
  AgentIdentity agent;          // email, token, site id, version, instance
};

}  // namespace kbgp::uplink
