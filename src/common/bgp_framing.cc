#include "common/bgp_framing.h"

#include <cstring>

namespace kbgp::bgp {

namespace {
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// Reads the capabilities of one Capabilities optional parameter (RFC 5492).
bool parse_capabilities(std::span<const uint8_t> caps, OpenInfo& info) {
  for (size_t c = 0; c < caps.size();) {
    if (c + 2 > caps.size()) return false;
    uint8_t code = caps[c];
    uint8_t clen = caps[c + 1];
    if (c + 2 + clen > caps.size()) return false;
    if (code == 6) info.extended_message = true;
    if (code == 65 && clen == 4) {
      info.four_octet_asn = true;
      info.asn = be32(caps.data() + c + 2);
    }
    c += 2 + size_t{clen};
  }
  return true;
}
}  // namespace

FrameCheck check_frame(std::span<const uint8_t> bytes, size_t max_length) {
  FrameCheck out;
  // A bad marker byte is reported as soon as it arrives, not after 19 bytes.
  bool marker_ok = true;
  if (bytes.size() >= 16) {
    // Every message passes here: two 8-byte words instead of 16 compares.
    uint64_t first, second;
    std::memcpy(&first, bytes.data(), 8);
    std::memcpy(&second, bytes.data() + 8, 8);
    marker_ok = (first & second) == ~uint64_t{0};
  } else {
    for (size_t i = 0; i < bytes.size() && marker_ok; ++i) marker_ok = bytes[i] == 0xff;
  }
  if (!marker_ok) {
    out.status = FrameCheck::Status::Malformed;
    out.error = "bad marker";
    out.reason = bad_input::Framing::BadMarker;
    return out;
  }
  if (bytes.size() < kHeaderSize) return out;
  out.length = be16(bytes.data() + 16);
  out.type = bytes[18];
  using bad_input::Framing;
  auto malformed = [&](const char* why, Framing reason = Framing::ShortForType) {
    out.status = FrameCheck::Status::Malformed;
    out.error = why;
    out.reason = reason;
    return out;
  };
  if (out.length < kHeaderSize) return malformed("length below 19", Framing::LengthBelowMinimum);
  if (out.length > max_length)
    return malformed("length above the maximum message size", Framing::LengthAboveMaximum);
  switch (out.type) {
    case kOpen:
      if (out.length < 29) return malformed("OPEN shorter than 29");
      break;
    case kUpdate:
      if (out.length < 23) return malformed("UPDATE shorter than 23");
      break;
    case kNotification:
      if (out.length < 21) return malformed("NOTIFICATION shorter than 21");
      break;
    case kKeepalive:
      if (out.length != kHeaderSize) return malformed("KEEPALIVE not 19 bytes");
      break;
    case kRouteRefresh:
      if (out.length < 23) return malformed("ROUTE-REFRESH shorter than 23");
      break;
    case 0:
      return malformed("message type 0", Framing::TypeZero);
    default:
      break;  // future types are relayed; the BGP speakers decide
  }
  if (bytes.size() >= out.length) out.status = FrameCheck::Status::Complete;
  return out;
}

std::optional<OpenInfo> parse_open(std::span<const uint8_t> msg) {
  if (msg.size() < 29 || msg[18] != kOpen) return std::nullopt;
  if (be16(msg.data() + 16) != msg.size()) return std::nullopt;
  OpenInfo info;
  info.version = msg[19];
  info.asn = be16(msg.data() + 20);
  info.hold_time = be16(msg.data() + 22);
  info.router_id = uint32_t{msg[24]} | uint32_t{msg[25]} << 8 | uint32_t{msg[26]} << 16 |
                   uint32_t{msg[27]} << 24;  // keep network order in memory
  size_t opt_len = msg[28];
  size_t pos = 29;
  size_t end = pos + opt_len;
  // RFC 9072 extended optional parameters length: 255 then type 255.
  if (opt_len == 255 && msg.size() >= 32 && msg[29] == 255) {
    opt_len = be16(msg.data() + 30);
    pos = 32;
    end = pos + opt_len;
    if (end > msg.size()) return std::nullopt;
    while (pos < end) {
      if (pos + 3 > end) return std::nullopt;
      uint8_t type = msg[pos];
      size_t len = be16(msg.data() + pos + 1);
      pos += 3;
      if (pos + len > end) return std::nullopt;
      if (type == 2 && !parse_capabilities(msg.subspan(pos, len), info)) return std::nullopt;
      pos += len;
    }
    return info;
  }
  if (end > msg.size()) return std::nullopt;
  while (pos < end) {
    if (pos + 2 > end) return std::nullopt;
    uint8_t type = msg[pos];
    size_t len = msg[pos + 1];
    pos += 2;
    if (pos + len > end) return std::nullopt;
    if (type == 2 && !parse_capabilities(msg.subspan(pos, len), info)) return std::nullopt;
    pos += len;
  }
  return info;
}

}  // namespace kbgp::bgp
