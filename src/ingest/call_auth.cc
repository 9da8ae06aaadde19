#include "ingest/call_auth.h"

#include "common/log.h"

namespace kbgp::ingest {

std::optional<std::string> metadata_value(const grpc::CallbackServerContext& ctx,
                                          std::string_view key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

MetadataLookup metadata_lookup(const grpc::CallbackServerContext& ctx) {
  return [&ctx](std::string_view key) { return metadata_value(ctx, key); };
}

std::string log_safe(std::string_view value) {
  constexpr size_t kMax = 128;
  std::string out;
  for (char c : value.substr(0, kMax)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;  // keeps log lines valid UTF-8
  }
  if (value.size() > kMax) out += "...";
  return out;
}

bool authenticate(const grpc::CallbackServerContext& ctx, const Credentials& creds,
                  std::string_view method, std::string* email) {
  CallerAuth auth = caller_auth(metadata_lookup(ctx));
  if (creds.check(auth.email, auth.token)) {
    *email = auth.email;
    return true;
  }
  log::warn("rejected call: bad credentials",
            {{"method", method},
             {"email", auth.email.empty() ? std::string("(none)") : log_safe(auth.email)},
             {"peer", ctx.peer()},
             {"token_present", auth.token.empty() ? "false" : "true"}});
  return false;
}

}  // namespace kbgp::ingest
