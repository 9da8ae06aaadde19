#include "listener/down_framing.h"

#include <algorithm>
#include <cstring>

namespace kbgp::listener {

DownFraming::DownFraming(shm::ListenerRecord* record) : record_(record) {
  uint32_t current = record_->down_current.load(std::memory_order_acquire) & 1;
  state_ = record_->down_state[current];
  position_ = state_.position;
  // Not a state we ever save: an OPEN is collected only while its body
  // arrives, and never reaches past peer_open (tests/fuzz/fuzz_listener.cc
  // found records that did either).
  bool collecting = (state_.flags & shm::kDownCollectingOpen) != 0;
  if (state_.header_len > bgp::kHeaderSize || state_.open_len > shm::kMaxOpenMessage ||
      (collecting && (state_.header_len != bgp::kHeaderSize ||
                      state_.body_left > shm::kMaxOpenMessage - state_.open_len)))
    state_.flags |= shm::kDownLost;
}

void DownFraming::save(uint64_t position) {
  position_ = position;
  state_.position = position;
  uint32_t current = record_->down_current.load(std::memory_order_relaxed) & 1;
  record_->down_state[current ^ 1] = state_;
  record_->down_current.store(current ^ 1, std::memory_order_release);
}

std::optional<bgp::OpenInfo> DownFraming::feed(std::span<const uint8_t> bytes) {
  std::optional<bgp::OpenInfo> found;
  shm::DownFramingState& s = state_;
  uint8_t* open = record_->peer_open;
  while (!(s.flags & shm::kDownLost) && !bytes.empty()) {
    if (s.header_len < bgp::kHeaderSize) {
      size_t n = std::min<size_t>(bgp::kHeaderSize - s.header_len, bytes.size());
      std::memcpy(s.header + s.header_len, bytes.data(), n);
      s.header_len = static_cast<uint8_t>(s.header_len + n);
      bytes = bytes.subspan(n);
      if (s.header_len < bgp::kHeaderSize) break;
      // The backend's own limit is unknown here; accept the largest size.
      auto frame = bgp::check_frame({s.header, bgp::kHeaderSize}, bgp::kMaxExtendedMessage);
      if (frame.status == bgp::FrameCheck::Status::Malformed) {
        s.flags |= shm::kDownLost;
        break;
      }
      s.body_left = static_cast<uint32_t>(frame.length - bgp::kHeaderSize);
      if (frame.type == bgp::kOpen && !(s.flags & shm::kDownOpenSeen)) {
        if (frame.length <= shm::kMaxOpenMessage) {
          std::memcpy(open, s.header, bgp::kHeaderSize);
          s.open_len = bgp::kHeaderSize;
          s.flags |= shm::kDownCollectingOpen;
        } else {
          s.flags |= shm::kDownOpenSeen;  // no valid OPEN is that long: stop looking
        }
      }
    } else {
      size_t n = std::min<size_t>(s.body_left, bytes.size());
      if (s.flags & shm::kDownCollectingOpen) {
        std::memcpy(open + s.open_len, bytes.data(), n);
        s.open_len += static_cast<uint32_t>(n);
      }
      s.body_left -= static_cast<uint32_t>(n);
      bytes = bytes.subspan(n);
    }
    if (s.header_len == bgp::kHeaderSize && s.body_left == 0) {
      ++s.messages;
      s.header_len = 0;
      if (s.flags & shm::kDownCollectingOpen) {
        s.flags = static_cast<uint8_t>((s.flags & ~shm::kDownCollectingOpen) | shm::kDownOpenSeen);
        found = bgp::parse_open({open, s.open_len});
        s.open_len = 0;
      }
    }
  }
  return found;
}

}  // namespace kbgp::listener
