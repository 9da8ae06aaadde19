// libFuzzer target: kbgp-ingest's checks of an agent's call metadata
// (ingest/call_metadata.h: credentials keys, sid, the Data call's 5-tuple,
// session-id, counters, backend-pin, x-kbgp-resume) and the log-safe form
// of client values (call_auth.h). An accepted Data call must carry values
// that are what the metadata said, in range; a refusal must say why.
//
// Input: the call's client metadata as "key: value" lines.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/decimal.h"
#include "common/uuid.h"
#include "fuzz_input.h"
#include "ingest/call_auth.h"
#include "ingest/call_metadata.h"
#include "ingest/credentials.h"

using namespace kbgp;
using namespace kbgp::ingest;

namespace {

const Credentials& credentials() {
  static const Credentials creds = [] {
    std::string error;
    return *Credentials::parse(
        R"({"credentials": [{"email": "ops@example.com", "token": "s3cr3t-T0KEN"},
                            {"email": "ops@example.com", "token": "n3xt-T0KEN"}]})",
        &error);
  }();
  return creds;
}

void check_log_safe(const std::string& value) {
  std::string shown = log_safe(value);
  FUZZ_CHECK(shown.size() <= 128 + 3);
  for (char c : shown) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
  if (value.size() <= 128) FUZZ_CHECK(shown.size() == value.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // gRPC hands the server the first value of a key.
  fuzz::FirstValues md(text);
  MetadataLookup lookup = [&md](std::string_view key) -> std::optional<std::string> {
    auto value = md.find(key);
    if (!value) return std::nullopt;
    return std::string(*value);
  };
  auto first = [&lookup](const char* key) { return lookup(key).value_or(""); };

  CallerAuth auth = caller_auth(lookup);
  FUZZ_CHECK(auth.email == first("x-ch-auth-email"));
  bool known = credentials().check(auth.email, auth.token);
  FUZZ_CHECK(known == (auth.email == "ops@example.com" &&
                       (auth.token == "s3cr3t-T0KEN" || auth.token == "n3xt-T0KEN")));
  check_log_safe(auth.email);

  std::string site_error;
  auto site = parse_site(lookup, &site_error);
  if (!site) FUZZ_CHECK(!site_error.empty());

  DataCallCheck check = check_data_call(lookup, "42b0e9c9");
  if (check.refusal != Refusal::None) {
    FUZZ_CHECK(!check.message.empty());
    FUZZ_CHECK(check.refusal == Refusal::InvalidArgument ||
               check.refusal == Refusal::FailedPrecondition);
    return 0;
  }
  const DataCallParams& p = check.params;
  FUZZ_CHECK(check.message.empty());
  // The session id is the canonical form of what was sent, version 4.
  uint8_t raw[16];
  FUZZ_CHECK(uuid_parse(p.session_id, raw) && uuid_to_string(raw) == p.session_id);
  FUZZ_CHECK(uuid_parse(first("session-id"), raw) && uuid_to_string(raw) == p.session_id);
  FUZZ_CHECK((raw[6] >> 4) == 4 && (raw[8] & 0xc0) == 0x80);
  FUZZ_CHECK(p.proto == first("proto") && !p.proto.empty());
  FUZZ_CHECK(p.device.port == parse_decimal(first("device-port"), 65535));
  FUZZ_CHECK(p.proxy.port == parse_decimal(first("proxy-port"), 65535));
  FUZZ_CHECK(p.device.family == AF_INET || p.device.family == AF_INET6);
  FUZZ_CHECK(Endpoint::parse_address(p.device.address_string()).has_value());
  FUZZ_CHECK(p.counter_up == parse_decimal(first("counter-up"), UINT64_MAX));
  FUZZ_CHECK(p.counter_down == parse_decimal(first("counter-down"), UINT64_MAX));
  FUZZ_CHECK(site && p.site == *site);
  std::string pin = first("backend-pin");
  FUZZ_CHECK(pin.empty() || pin == "42b0e9c9");
  FUZZ_CHECK(p.resume_extension == (lookup("x-kbgp-resume") == std::string("1")));
  check_log_safe(p.instance);
  check_log_safe(p.version);
  return 0;
}
