// The device -> backend half of a session without any I/O: bytes read from
// the device socket are staged here, their BGP framing is checked, and every
// complete message is moved into the session's `up` ring as a whole. The
// uplink may therefore always assume the ring holds whole, well-framed
// messages.
//
// The staging buffer is allocated once per session (16 KiB, grown once to
// 64 KiB when both OPENs announced Extended Message) and reused, so the data
// path allocates nothing per message. An idle session touches only its
// first page: after every drain the unfinished tail moves to the front.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "common/bgp_framing.h"
#include "common/ring.h"

namespace kbgp::listener {

class FrameAssembler {
 public:
  static constexpr size_t kInitialCapacity = 16 * 1024;
  // One maximal extended message (65535 bytes) must fit.
  static constexpr size_t kExtendedCapacity = 64 * 1024;
  static_assert(kInitialCapacity >= bgp::kMaxMessage);
  static_assert(kExtendedCapacity >= bgp::kMaxExtendedMessage);

  FrameAssembler();

  // Where the next read() may put bytes; never empty while the assembler is
  // not waiting for ring space (a partial message is always smaller than the
  // buffer). Grows the buffer first when extended messages became allowed.
  std::span<uint8_t> read_space();
  // Records that `n` bytes were placed at the start of read_space().
  void commit_read(size_t n);

  struct Result {
    enum class Status {
      Drained,     // every complete message is in the ring; maybe a partial one is left
      NeedsSpace,  // a complete message waits for ring space: stop reading the device
      Malformed,   // bad framing: the session must end
    } status = Status::Drained;
    size_t messages = 0;  // moved into the ring by this call
    size_t bytes = 0;
    const char* error = "";  // static text for Malformed
    // The device's OPEN, the first time one is moved (its parse may fail:
    // the framing was fine, so it is relayed and the BGP peer decides).
    std::optional<bgp::OpenInfo> device_open;
  };
  // Moves every complete staged message into `ring`, in order.
  Result drain(RingProducer& ring);

  // Bytes staged and not yet moved (part of a message, or messages waiting
  // for ring space).
  size_t staged() const { return tail_ - head_; }
  size_t capacity() const { return capacity_; }
  // Framing state; the listener reports the backend side's OPEN here.
  bgp::SessionFraming& framing() { return framing_; }
  const bgp::SessionFraming& framing() const { return framing_; }

 private:
  void compact();
  void ensure_capacity(size_t wanted);

  std::unique_ptr<uint8_t[]> buffer_;
  size_t capacity_ = 0;
  size_t head_ = 0;  // first staged byte
  size_t tail_ = 0;  // one past the last staged byte
  bool open_seen_ = false;
  bool malformed_ = false;
  const char* malformed_error_ = "";
  bgp::SessionFraming framing_;
};

}  // namespace kbgp::listener
