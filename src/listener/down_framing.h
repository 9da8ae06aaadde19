// Follows the BGP framing of the backend -> device byte stream passively.
//
// The listener relays down bytes unchanged whatever they are: the backend is
// trusted and checking it is not the listener's job. It only watches the
// stream to learn the backend side's OPEN (the Extended Message capability
// must be announced by both sides before the device may send messages
// longer than 4096 bytes) and to count messages. If the stream stops looking
// like BGP, watching stops; relaying does not.
//
// Bytes are fed as the device's kernel accepts them, so the OPEN is known
// before the device can have seen it and answered with a long message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "common/bgp_framing.h"

namespace kbgp::listener {

class DownFraming {
 public:
  // Feeds the next bytes of the stream; returns the backend's OPEN when its
  // last byte is among them (once per session).
  std::optional<bgp::OpenInfo> feed(std::span<const uint8_t> bytes);

  uint64_t messages() const { return messages_; }  // complete messages seen
  bool lost() const { return lost_; }              // framing broke; no longer following

 private:
  std::array<uint8_t, bgp::kHeaderSize> header_{};
  size_t header_len_ = 0;
  size_t body_left_ = 0;  // bytes of the current message after its header
  // The OPEN being collected (allocated for that one message only).
  std::unique_ptr<uint8_t[]> open_;
  size_t open_len_ = 0;
  size_t open_size_ = 0;
  bool open_seen_ = false;
  bool lost_ = false;
  uint64_t messages_ = 0;
};

}  // namespace kbgp::listener
