#include "listener/down_framing.h"

#include <algorithm>
#include <cstring>

namespace kbgp::listener {

std::optional<bgp::OpenInfo> DownFraming::feed(std::span<const uint8_t> bytes) {
  std::optional<bgp::OpenInfo> found;
  while (!lost_ && !bytes.empty()) {
    if (header_len_ < header_.size()) {
      size_t n = std::min(header_.size() - header_len_, bytes.size());
      std::memcpy(header_.data() + header_len_, bytes.data(), n);
      header_len_ += n;
      bytes = bytes.subspan(n);
      if (header_len_ < header_.size()) break;
      // The backend's own limit is unknown here; accept the largest size.
      auto frame = bgp::check_frame(header_, bgp::kMaxExtendedMessage);
      if (frame.status == bgp::FrameCheck::Status::Malformed) {
        lost_ = true;
        break;
      }
      body_left_ = frame.length - bgp::kHeaderSize;
      if (frame.type == bgp::kOpen && !open_seen_) {
        open_size_ = frame.length;  // <= 65535
        open_ = std::make_unique_for_overwrite<uint8_t[]>(open_size_);
        std::memcpy(open_.get(), header_.data(), header_.size());
        open_len_ = header_.size();
      }
    } else {
      size_t n = std::min(body_left_, bytes.size());
      if (open_) {
        std::memcpy(open_.get() + open_len_, bytes.data(), n);
        open_len_ += n;
      }
      body_left_ -= n;
      bytes = bytes.subspan(n);
    }
    if (header_len_ == header_.size() && body_left_ == 0) {
      ++messages_;
      header_len_ = 0;
      if (open_) {
        open_seen_ = true;
        found = bgp::parse_open({open_.get(), open_len_});
        open_.reset();
      }
    }
  }
  return found;
}

}  // namespace kbgp::listener
