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
  AgentIdentity agent;          // email, token, site id, version, instance
};

}  // namespace kbgp::uplink
