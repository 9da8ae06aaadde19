#include "ingest/call_metadata.h"

#include "common/decimal.h"

#include "common/resume_protocol.h"
#include "common/uuid.h"

namespace kbgp::ingest {

namespace {

using kbgp::parse_decimal;

// Metadata values come from the network: keep them short in messages.
std::string quoted(const std::string& v) {
  if (v.size() <= 64) return "\"" + v + "\"";
  return "\"" + v.substr(0, 64) + "...\"";
}

}  // namespace

CallerAuth caller_auth(const MetadataLookup& md) {
  CallerAuth a;
  a.email = md("x-ch-auth-email").value_or("");
  auto token = md("x-ch-auth-token");
  if (!token || token->empty()) token = md("x-ch-auth-api-token");
  a.token = token.value_or("");
  return a;
}

std::optional<uint32_t> parse_site(const MetadataLookup& md, std::string* error) {
  auto sid = md("sid");
  if (!sid || sid->empty()) return 0u;
  auto n = parse_decimal(*sid, UINT32_MAX);
  if (!n) {
    *error = "metadata sid must be a site id (0 to 4294967295), got " + quoted(*sid);
    return std::nullopt;
  }
  return static_cast<uint32_t>(*n);
}

DataCallCheck check_data_call(const MetadataLookup& md, const std::string& backend_pin) {
  DataCallCheck c;
  auto refuse = [&c](Refusal r, std::string message) {
    c.refusal = r;
    c.message = std::move(message);
    return c;
  };
  auto required = [&](const char* key, std::string* out) -> bool {
    auto v = md(key);
    if (!v || v->empty()) return false;
    *out = *v;
    return true;
  };
  DataCallParams& p = c.params;
  std::string sid, device_ip, device_port, proxy_ip, proxy_port, up, down;
  for (auto [key, out] : {std::pair{"session-id", &sid}, {"device-ip", &device_ip},
                          {"device-port", &device_port}, {"proxy-ip", &proxy_ip},
                          {"proxy-port", &proxy_port}, {"proto", &p.proto},
                          {"counter-up", &up}, {"counter-down", &down}}) {
    if (!required(key, out)) {
      return refuse(Refusal::InvalidArgument, std::string("missing metadata ") + key);
    }
  }
  uint8_t raw[16];
  if (!uuid_parse(sid, raw) || (raw[6] >> 4) != 4 || (raw[8] & 0xc0) != 0x80) {
    return refuse(Refusal::InvalidArgument,
                  "metadata session-id must be a version 4 UUID, got " + quoted(sid));
  }
  p.session_id = uuid_to_string(raw);
  auto endpoint = [&](const char* ip_key, const std::string& ip, const char* port_key,
                      const std::string& port, Endpoint* out) -> std::optional<std::string> {
    auto addr = Endpoint::parse_address(ip);
    if (!addr) return std::string("metadata ") + ip_key + " must be an IP address, got " + quoted(ip);
    auto n = parse_decimal(port, 65535);
    if (!n) return std::string("metadata ") + port_key + " must be a port (0 to 65535), got " +
                   quoted(port);
    *out = addr->unmapped();
    out->port = static_cast<uint16_t>(*n);
    return std::nullopt;
  };
  if (auto err = endpoint("device-ip", device_ip, "device-port", device_port, &p.device)) {
    return refuse(Refusal::InvalidArgument, *err);
  }
  if (auto err = endpoint("proxy-ip", proxy_ip, "proxy-port", proxy_port, &p.proxy)) {
    return refuse(Refusal::InvalidArgument, *err);
  }
  auto counter_up = parse_decimal(up, UINT64_MAX);
  auto counter_down = parse_decimal(down, UINT64_MAX);
  if (!counter_up) {
    return refuse(Refusal::InvalidArgument, "metadata counter-up must be a count, got " + quoted(up));
  }
  if (!counter_down) {
    return refuse(Refusal::InvalidArgument,
                  "metadata counter-down must be a count, got " + quoted(down));
  }
  p.counter_up = *counter_up;
  p.counter_down = *counter_down;
  std::string error;
  auto site = parse_site(md, &error);
  if (!site) return refuse(Refusal::InvalidArgument, error);
  p.site = *site;
  if (auto pin = md("backend-pin"); pin && !pin->empty() && *pin != backend_pin) {
    return refuse(Refusal::FailedPrecondition,
                  "metadata backend-pin " + quoted(*pin) + " names another backend (this is " +
                      backend_pin + "); ask Control again");
  }
  p.instance = md("instance").value_or("");
  p.version = md("version").value_or("");
  auto resume = md(resume::kMetadataKey);
  p.resume_extension = resume::requested(resume ? std::optional<std::string_view>(*resume)
                                                : std::nullopt);
  return c;
}

}  // namespace kbgp::ingest
