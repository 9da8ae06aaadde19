#include "uplink/grpc_channels.h"

#include <cerrno>
#include <cstring>

#include "config.h"

namespace kbgp::uplink {

namespace {
constexpr int kMaxMessageBytes = 4 * 1024 * 1024;

}  // namespace

std::optional<ChannelFactory> ChannelFactory::create(const UplinkConfig& config,
                                                     std::string* error) {
  ChannelFactory f;
  f.target_ = config.target;
  f.tls_server_name_ = config.tls_server_name;
  if (config.insecure) {
    f.credentials_ = grpc::InsecureChannelCredentials();
    return f;
  }
  grpc::SslCredentialsOptions ssl;
  if (!config.ca_pem.empty()) {
    if (config.ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      *error = "CA file " + config.ca_file + " holds no PEM certificate";
      return std::nullopt;
    }
    ssl.pem_root_certs = config.ca_pem;
  }
  f.credentials_ = grpc::SslCredentials(ssl);
  return f;
}

std::shared_ptr<grpc::Channel> ChannelFactory::make(const std::string& connection_tag) const {
  grpc::ChannelArguments args;
  args.SetString("kbgp.connection", connection_tag);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 30000);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // The uplink resumes streams itself (session-id + counters); gRPC's own
  // retries would buffer every message of a stream until commit.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Receive backpressure is done by delaying StartRead; without BDP probing
  // and with a small lookahead the transport buffers ~48 KiB per stream
  // instead of megabytes (grpc-cpp-facts.md), which matters at 1000 sessions.
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 65536);
  args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, std::string("kbgp/") + PACKAGE_VERSION);
  if (!tls_server_name_.empty()) args.SetSslTargetNameOverride(tls_server_name_);
  return grpc::CreateCustomChannel(target_, credentials_, args);
}

}  // namespace kbgp::uplink
