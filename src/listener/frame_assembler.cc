#include "listener/frame_assembler.h"

#include <cstring>

namespace kbgp::listener {

FrameAssembler::FrameAssembler()
    // make_unique_for_overwrite: pages stay untouched (not resident) until a
    // read fills them.
    : buffer_(std::make_unique_for_overwrite<uint8_t[]>(kInitialCapacity)),
      capacity_(kInitialCapacity) {}

void FrameAssembler::ensure_capacity(size_t wanted) {
  if (capacity_ >= wanted) return;
  auto bigger = std::make_unique_for_overwrite<uint8_t[]>(wanted);
  std::memcpy(bigger.get(), buffer_.get() + head_, staged());
  tail_ = staged();
  head_ = 0;
  buffer_ = std::move(bigger);
  capacity_ = wanted;
}

std::span<uint8_t> FrameAssembler::read_space() {
  if (framing_.max_length() > bgp::kMaxMessage) ensure_capacity(kExtendedCapacity);
  compact();
  return {buffer_.get() + tail_, capacity_ - tail_};
}

void FrameAssembler::commit_read(size_t n) {
  tail_ += n <= capacity_ - tail_ ? n : capacity_ - tail_;
}

void FrameAssembler::compact() {
  if (head_ == 0) return;
  size_t n = staged();
  if (n) std::memmove(buffer_.get(), buffer_.get() + head_, n);
  head_ = 0;
  tail_ = n;
}

FrameAssembler::Result FrameAssembler::drain(RingProducer& ring) {
  Result result;
  if (malformed_) {
    result.status = Result::Status::Malformed;
    result.error = malformed_error_;
    return result;
  }
  while (head_ < tail_) {
    std::span<const uint8_t> staged_bytes(buffer_.get() + head_, tail_ - head_);
    bgp::FrameCheck frame = bgp::check_frame(staged_bytes, framing_.max_length());
    if (frame.status == bgp::FrameCheck::Status::Malformed) {
      // Sticky: nothing after a bad header can be trusted.
      malformed_ = true;
      malformed_error_ = frame.error;
      result.status = Result::Status::Malformed;
      result.error = frame.error;
      break;
    }
    if (frame.status == bgp::FrameCheck::Status::Incomplete) break;
    auto message = staged_bytes.first(frame.length);
    if (!ring.write(message)) {
      result.status = Result::Status::NeedsSpace;
      break;
    }
    if (frame.type == bgp::kOpen && !open_seen_) {
      open_seen_ = true;
      result.device_open = bgp::parse_open(message);
      if (result.device_open) framing_.device_open(*result.device_open);
    }
    head_ += frame.length;
    ++result.messages;
    result.bytes += frame.length;
  }
  if (head_ == tail_) head_ = tail_ = 0;
  return result;
}

}  // namespace kbgp::listener
