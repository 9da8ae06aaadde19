// Reads a call's client metadata and checks its credentials.
#pragma once

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>
#include <string_view>

#include "ingest/call_metadata.h"
#include "ingest/credentials.h"

namespace kbgp::ingest {

// First value of a client metadata key.
std::optional<std::string> metadata_value(const grpc::CallbackServerContext& ctx,
                                          std::string_view key);
MetadataLookup metadata_lookup(const grpc::CallbackServerContext& ctx);

// Checks x-ch-auth-email + x-ch-auth-token (or x-ch-auth-api-token). On
// failure logs "rejected call: bad credentials" (method, email, peer; never
// the token) and returns false. On success sets *email.
bool authenticate(const grpc::CallbackServerContext& ctx, const Credentials& creds,
                  std::string_view method, std::string* email);

// Truncates a client-supplied value for a log field.
std::string log_safe(std::string_view value);

}  // namespace kbgp::ingest
