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
//
// The state lives in the session region (ListenerRecord): the OPEN is
// collected in its peer_open area, and save() publishes the rest,
// double-buffered, tagged with the down-stream position it describes. A
// restarted listener continues from the last save(); restore() says where
// that was, so the bytes between it and what the device's kernel took can
// be fed again (docs/architecture.md, "Restarts without loss").
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "common/bgp_framing.h"
#include "common/layout.h"

namespace kbgp::listener {

class DownFraming {
 public:
  // Continues from the record's last save (all zero for a new session).
  explicit DownFraming(shm::ListenerRecord* record);

  // Feeds the next bytes of the stream; returns the backend's OPEN when its
  // last byte is among them (once per session).
  std::optional<bgp::OpenInfo> feed(std::span<const uint8_t> bytes);
  // Publishes the state as that at down-stream position `position` (the
  // position right after the bytes fed so far).
  void save(uint64_t position);
  // The position of the last save (0 for a new session).
  uint64_t saved_position() const { return position_; }

  uint64_t messages() const { return state_.messages; }  // complete messages seen
  bool lost() const { return (state_.flags & shm::kDownLost) != 0; }
  // Stops following (e.g. a restarted listener found a gap it cannot fill).
  void lose() { state_.flags |= shm::kDownLost; }

 private:
  shm::ListenerRecord* record_;
  shm::DownFramingState state_{};
  uint64_t position_ = 0;
};

}  // namespace kbgp::listener
