// Creating gRPC channels to the backend: credentials (TLS with the system
// store or a CA file, or plaintext) and channel arguments shared by the
// Control channel and every Data channel.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "uplink/uplink_config.h"

namespace kbgp::uplink {

// "UNAUTHENTICATED", "UNAVAILABLE"...: what operators search logs for.
std::string status_code_name(grpc::StatusCode code);


class ChannelFactory {
 public:
  // Loads the CA file if one is configured; nullopt (and `error`) if it
  // cannot be read.
  static std::optional<ChannelFactory> create(const UplinkConfig& config, std::string* error);

  // A channel with its own HTTP/2 connection: `connection_tag` goes into a
  // channel argument, and gRPC shares a connection only between channels
  // whose arguments are identical.
  std::shared_ptr<grpc::Channel> make(const std::string& connection_tag) const;

 private:
  std::string target_;
  std::string tls_server_name_;
  std::string proxy_;  // the uplink's CONNECT relay, or empty
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

}  // namespace kbgp::uplink
