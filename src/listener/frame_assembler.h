// The device -> backend half of a session without any I/O. Device bytes are
// read straight into the up ring's free space, right after what the ring
// already publishes; their BGP framing is checked there, and every complete
// message is published as a whole by advancing the ring's write position.
// The uplink may therefore always assume the ring holds whole, well-framed
// messages.
//
// Nothing lives in the listener's private memory: how many bytes were taken
// from the socket (ListenerRecord::up_taken) and which OPENs were seen
// (ListenerRecord::framing) are in the session region, and the staged start
// of an unfinished message lies in the ring itself. A listener that is
// killed and restarted builds a FrameAssembler on the same region and
// carries on byte-exactly; see adopt() for the one window a crash can hit
// (between read() and commit_read()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/bgp_framing.h"
#include "common/layout.h"
#include "common/ring.h"

namespace kbgp::listener {

class FrameAssembler {
 public:
  // Continues from whatever `record` says (all zero for a new session).
  FrameAssembler(RingProducer ring, shm::ListenerRecord* record);

  // False when the record cannot be right (it claims fewer bytes taken than
  // the ring publishes, or more staged than the ring can hold): the region
  // was corrupted and the session must end.
  bool consistent() const;

  // Where the next read() may put bytes: the ring's free space after the
  // staged bytes, up to two spans. Both empty: the ring is full, stop
  // reading until the uplink frees space.
  RingProducer::Spans read_space() const;
  // Records that the first `n` bytes of read_space() now hold device bytes.
  void commit_read(size_t n);
  // The kernel says `n` more bytes were read from the socket than the
  // record holds: a predecessor died between read() and commit_read(). They
  // are in read_space() already (read() put them there); count them.
  // False (nothing changed) when `n` exceeds that space.
  bool adopt(size_t n);

  struct Result {
    enum class Status {
      Drained,     // every complete message is published; maybe a partial one is left
      NeedsSpace,  // the ring is full: stop reading the device until space is freed
      Malformed,   // bad framing: the session must end
    } status = Status::Drained;
    size_t messages = 0;  // published by this call
    size_t bytes = 0;
    const char* error = "";  // static text for Malformed
    bad_input::Framing reason = bad_input::Framing::BadMarker;  // for Malformed
    // The device's OPEN, the first time one is published (its parse may
    // fail: the framing was fine, so it is relayed and the BGP peer decides).
    std::optional<bgp::OpenInfo> device_open;
  };
  // Publishes every complete staged message, in order.
  Result drain();

  // Bytes taken from the socket and not yet published.
  size_t staged() const { return static_cast<size_t>(taken_ - ring_.write_pos()); }
  // Bytes taken from the device socket in all (what the kernel should count).
  uint64_t taken() const { return taken_; }
  // The backend's OPEN arrived (seen in the down stream).
  void peer_open(const bgp::OpenInfo& info);
  const bgp::SessionFraming& framing() const { return framing_; }

 private:
  void set_flags(uint32_t bits);

  RingProducer ring_;
  shm::ListenerRecord* record_;
  uint64_t taken_ = 0;
  uint32_t flags_ = 0;  // shm::kDeviceOpenSeen ... (mirrors record_->framing)
  bool malformed_ = false;
  const char* malformed_error_ = "";
  bad_input::Framing malformed_reason_ = bad_input::Framing::BadMarker;
  bgp::SessionFraming framing_;
};

}  // namespace kbgp::listener
