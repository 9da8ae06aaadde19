#include "common/resume_protocol.h"

#include <charconv>

namespace kbgp::resume {

bool requested(std::optional<std::string_view> value) {
  return value && *value == kMetadataValue;
}

std::string encode_ack(uint64_t count) { return std::to_string(count); }

std::optional<uint64_t> decode_ack(std::string_view data) {
  if (data.empty() || data.size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(data.data(), data.data() + data.size(), value);
  if (ec != std::errc() || end != data.data() + data.size()) return std::nullopt;
  return value;
}

namespace {

Decision kill(std::string why) {
  Decision d;
  d.kill = true;
  d.why = std::move(why);
  return d;
}

std::string pair(uint64_t ours, uint64_t theirs) {
  return "ours " + std::to_string(ours) + ", theirs " + std::to_string(theirs);
}

// One direction: `sent` messages we counted, `received` what the other
// side says it got.
std::optional<Decision> our_direction(const char* name, uint64_t sent, uint64_t received,
                                      uint64_t kept_from, Decision& d) {
  if (received > sent)
    return kill(std::string(name) + ": the other side received more than we sent (" +
                pair(sent, received) + ")");
  if (received < sent) {
    if (received < kept_from)
      return kill(std::string(name) + ": messages after " + std::to_string(received) +
                  " are no longer kept (kept from " + std::to_string(kept_from) + ")");
    d.resend_from = received + 1;
    d.resend_to = sent;
  }
  return std::nullopt;
}

}  // namespace

Decision agent_decides(bool extension, uint64_t our_up, uint64_t our_down, uint64_t server_up,
                       uint64_t server_down, uint64_t kept_from) {
  if (!extension) {
    if (our_up != server_up) return kill("counter-up disagrees (" + pair(our_up, server_up) + ")");
    if (our_down != server_down)
      return kill("counter-down disagrees (" + pair(our_down, server_down) + ")");
    return {};
  }
  Decision d;
  if (auto k = our_direction("counter-up", our_up, server_up, kept_from, d)) return *k;
  // The backend resends what we miss; it can never have sent less than we got.
  if (server_down < our_down)
    return kill("counter-down: we received more than the backend sent (" +
                pair(our_down, server_down) + ")");
  return d;
}

Decision backend_decides(bool extension, uint64_t our_up, uint64_t our_down, uint64_t agent_up,
                         uint64_t agent_down, uint64_t kept_from) {
  if (!extension) {
    if (our_up != agent_up) return kill("counter-up disagrees (" + pair(our_up, agent_up) + ")");
    if (our_down != agent_down)
      return kill("counter-down disagrees (" + pair(our_down, agent_down) + ")");
    return {};
  }
  Decision d;
  if (auto k = our_direction("counter-down", our_down, agent_down, kept_from, d)) return *k;
  if (agent_up < our_up)
    return kill("counter-up: we received more than the agent sent (" + pair(our_up, agent_up) +
                ")");
  return d;
}

}  // namespace kbgp::resume
