// libFuzzer target: BGP framing and OPEN parsing must never crash, read out
// of bounds or loop, whatever a device sends; a complete frame is never
// shorter than a header or longer than the input or the size limit.
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bgp_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  kbgp::bgp::SessionFraming framing;
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto check = kbgp::bgp::check_frame(bytes.subspan(pos), framing.max_length());
    if (check.status != kbgp::bgp::FrameCheck::Status::Complete) break;
    // A complete frame lies within the input and the session's size limit.
    if (check.length < kbgp::bgp::kHeaderSize || check.length > framing.max_length() ||
        check.length > bytes.size() - pos)
      __builtin_trap();
    auto message = bytes.subspan(pos, check.length);
    if (check.type == kbgp::bgp::kOpen) {
      if (auto info = kbgp::bgp::parse_open(message)) framing.device_open(*info);
    }
    pos += check.length;
  }
  (void)kbgp::bgp::parse_open(bytes);
  return 0;
}
