// BGP-4 message framing (RFC 4271 section 4.1, RFC 8654 extended messages).
//
// The listener never interprets routes; it only checks that the device sends
// well-formed frames (marker, length, type) so a desynchronised or hostile
// stream is cut at the first bad header instead of being relayed, and reads
// the OPEN for the status API (ASN, router id, hold time, capabilities).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "common/bad_input.h"

namespace kbgp::bgp {

constexpr size_t kHeaderSize = 19;
constexpr size_t kMaxMessage = 4096;
constexpr size_t kMaxExtendedMessage = 65535;

enum MessageType : uint8_t {
  kOpen = 1,
  kUpdate = 2,
  kNotification = 3,
  kKeepalive = 4,
  kRouteRefresh = 5,
};

struct FrameCheck {
  enum class Status { Incomplete, Complete, Malformed } status = Status::Incomplete;
  size_t length = 0;   // whole message length when known
  uint8_t type = 0;
  const char* error = "";  // static text for Malformed
  bad_input::Framing reason = bad_input::Framing::BadMarker;  // meaningful for Malformed
};

// Checks the frame at the start of `bytes`. Incomplete when fewer than 19
// bytes are there, or the header is good but the body is not all there yet
// (`length` then says how much is needed). `max_length` is 4096, or 65535
// once both sides announced the Extended Message capability.
FrameCheck check_frame(std::span<const uint8_t> bytes, size_t max_length);

struct OpenInfo {
  uint8_t version = 0;
  uint32_t asn = 0;        // the 4-octet ASN when the capability is present
  uint16_t hold_time = 0;
  uint32_t router_id = 0;  // network byte order
  bool extended_message = false;  // RFC 8654 capability 6
  bool four_octet_asn = false;    // RFC 6793 capability 65
};

// Parses a complete OPEN message (header included). nullopt when it is not a
// well-formed OPEN; optional parameters that are not capabilities are skipped.
std::optional<OpenInfo> parse_open(std::span<const uint8_t> message);

// Tracks the framing state of one session: the largest allowed message, and
// whether each side's OPEN was seen.
class SessionFraming {
 public:
  size_t max_length() const {
    return device_extended_ && peer_extended_ ? kMaxExtendedMessage : kMaxMessage;
  }
  void device_open(const OpenInfo& info) { device_extended_ = info.extended_message; }
  void peer_open(const OpenInfo& info) { peer_extended_ = info.extended_message; }

 private:
  bool device_extended_ = false;
  bool peer_extended_ = false;
};

}  // namespace kbgp::bgp
