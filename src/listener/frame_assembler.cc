#include "listener/frame_assembler.h"

#include <vector>

namespace kbgp::listener {

FrameAssembler::FrameAssembler(RingProducer ring, shm::ListenerRecord* record)
    : ring_(ring), record_(record) {
  taken_ = record_->up_taken.load(std::memory_order_acquire);
  flags_ = record_->framing.load(std::memory_order_acquire);
  bgp::OpenInfo info;
  if (flags_ & shm::kDeviceOpenSeen) {
    info.extended_message = (flags_ & shm::kDeviceExtended) != 0;
    framing_.device_open(info);
  }
  if (flags_ & shm::kPeerOpenSeen) {
    info.extended_message = (flags_ & shm::kPeerExtended) != 0;
    framing_.peer_open(info);
  }
}

bool FrameAssembler::consistent() const {
  uint64_t published = ring_.write_pos();
  return taken_ >= published && taken_ - published <= ring_.free_space();
}

void FrameAssembler::set_flags(uint32_t bits) {
  flags_ |= bits;
  record_->framing.store(flags_, std::memory_order_release);
}

void FrameAssembler::peer_open(const bgp::OpenInfo& info) {
  framing_.peer_open(info);
  set_flags(shm::kPeerOpenSeen | (info.extended_message ? shm::kPeerExtended : 0));
}

RingProducer::Spans FrameAssembler::read_space() const { return ring_.writable_after(staged()); }

void FrameAssembler::commit_read(size_t n) {
  taken_ += n;
  record_->up_taken.store(taken_, std::memory_order_release);
}

bool FrameAssembler::adopt(size_t n) {
  auto space = read_space();
  if (n > space.first.size() + space.second.size()) return false;
  commit_read(n);
  return true;
}

FrameAssembler::Result FrameAssembler::drain() {
  Result result;
  if (malformed_) {
    result.status = Result::Status::Malformed;
    result.error = malformed_error_;
    result.reason = malformed_reason_;
    return result;
  }
  // Messages are validated in place and published together at the end
  // (one store of the write position, so one wake-up decision per read);
  // `done` is how much of the staged bytes are whole, checked messages.
  const size_t staged_bytes = staged();
  size_t done = 0;
  for (;;) {
    size_t left = staged_bytes - done;
    if (left == 0) break;
    uint8_t scratch[bgp::kHeaderSize];
    size_t have = left < sizeof scratch ? left : sizeof scratch;
    bgp::FrameCheck frame =
        bgp::check_frame(ring_.view_unpublished(done, have, scratch), framing_.max_length());
    if (frame.status == bgp::FrameCheck::Status::Malformed) {
      // Sticky: nothing after a bad header can be trusted. The whole
      // messages before it still go to the backend.
      if (done) ring_.commit(done);
      malformed_ = true;
      malformed_error_ = frame.error;
      malformed_reason_ = frame.reason;
      result.status = Result::Status::Malformed;
      result.error = frame.error;
      result.reason = frame.reason;
      return result;
    }
    // Only the header was checked: the body is there when enough is staged.
    if (have < bgp::kHeaderSize || frame.length > left) break;
    if (frame.type == bgp::kOpen && !(flags_ & shm::kDeviceOpenSeen)) {
      std::vector<uint8_t> message(frame.length);
      ring_.peek_unpublished(done, message.data(), message.size());
      result.device_open = bgp::parse_open(message);
      uint32_t bits = shm::kDeviceOpenSeen;
      if (result.device_open) {
        framing_.device_open(*result.device_open);
        if (result.device_open->extended_message) bits |= shm::kDeviceExtended;
      }
      set_flags(bits);
    }
    done += frame.length;  // the message is in place: publishing is all
    ++result.messages;
    result.bytes += frame.length;
  }
  if (done) ring_.commit(done);
  if (read_space().first.empty()) result.status = Result::Status::NeedsSpace;
  return result;
}

}  // namespace kbgp::listener
