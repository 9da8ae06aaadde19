// Builds and starts the gRPC server: TLS or plaintext credentials, the
// channel arguments agents need, and gRPC's own log lines routed into
// kbgp::log.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "ingest/options.h"

namespace kbgp::ingest {

// Sends gRPC's internal log messages through kbgp::log (JSON lines).
void route_grpc_logs();

// Null (with `error`) if the server could not start. `cert_pem`/`key_pem`
// are ignored with --plaintext. `*port` gets the bound port (useful with
// port 0).
std::unique_ptr<grpc::Server> start_grpc_server(const Options& options,
                                                const std::string& cert_pem,
                                                const std::string& key_pem,
                                                grpc::Service* service, int* port,
                                                std::string* error);

}  // namespace kbgp::ingest
