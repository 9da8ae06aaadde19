#include "uplink/grpc_channels.h"

#include <cerrno>
#include <cstring>

#include "config.h"

namespace kbgp::uplink {

std::string status_code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "code " + std::to_string(static_cast<int>(code));
  }
}

namespace {
constexpr int kMaxMessageBytes = 4 * 1024 * 1024;

}  // namespace

std::optional<ChannelFactory> ChannelFactory::create(const UplinkConfig& config,
                                                     std::string* error) {
  ChannelFactory f;
  f.target_ = config.target;
  f.tls_server_name_ = config.tls_server_name;
  f.proxy_ = config.grpc_proxy;
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
  // Short: Data streams wait on a reconnect to resume (session.h).
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is left at its default on purpose:
  // gRPC also uses it as the time a connection attempt (TCP, TLS, HTTP/2
  // SETTINGS) may take. At 500 ms, a hundred connections opened at once on
  // a busy machine (a thousand devices coming up) timed out, failed their
  // streams and then backed off for up to 30 s.
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
  // Web proxies go through our relay (proxy_relay.h); gRPC's own proxy
  // lookup stays off either way.
  if (proxy_.empty()) args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  else args.SetString(GRPC_ARG_HTTP_PROXY, proxy_);
  return grpc::CreateCustomChannel(target_, credentials_, args);
}

}  // namespace kbgp::uplink
