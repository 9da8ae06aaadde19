#include "ingest/grpc_server.h"

#include <grpc/support/log.h>

#include "common/log.h"

namespace kbgp::ingest {

void route_grpc_logs() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    log::Level level = log::Level::Debug;
    if (args->severity == GPR_LOG_SEVERITY_ERROR) level = log::Level::Error;
    if (args->severity == GPR_LOG_SEVERITY_INFO) level = log::Level::Info;
    log::write(level, args->message ? args->message : "",
               {{"source", "grpc"},
                {"where", std::string(args->file ? args->file : "?") + ":" +
                              std::to_string(args->line)}});
  });
}

std::unique_ptr<grpc::Server> start_grpc_server(const Options& options,
                                                const std::string& cert_pem,
                                                const std::string& key_pem,
                                                grpc::Service* service, int* port,
                                                std::string* error) {
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (options.plaintext) {
    creds = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    ssl.pem_key_cert_pairs.push_back({key_pem, cert_pem});
    creds = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen.to_string(), creds, port);
  builder.RegisterService(service);
  // gRPC binds with SO_REUSEPORT by default: a second backend on the same
  // port would silently share the traffic instead of failing.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Agents send HTTP/2 keepalive pings, possibly with no call open; the
  // default policy (one ping per 5 minutes) would answer them with GOAWAY
  // "too_many_pings".
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Our own pings find dead agents, so their sessions enter the grace period.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  // Receive-side flow control: without these a stream whose reads we delay
  // (collector back-pressure) lets ~4 MiB pile up (BDP probing grows the
  // window); with them at most the lookahead per stream. 512 KiB, not
  // 64 KiB: the agent sends DataRequests of up to 256 KiB, and a window
  // smaller than one made every request wait for several WINDOW_UPDATE
  // round trips, each a wake-up of the agent's and our gRPC threads.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 512 * 1024);
  auto server = builder.BuildAndStart();
  if (!server || *port == 0) {
    *error = "cannot serve gRPC on " + options.listen.to_string() +
             (options.plaintext ? " (address in use or not local?)"
                                : " (address in use or not local, or unusable TLS "
                                  "certificate/key?)");
    if (server) server->Shutdown();
    return nullptr;
  }
  return server;
}

}  // namespace kbgp::ingest
