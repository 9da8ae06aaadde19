#include "uplink/coalescing.h"

namespace kbgp::uplink {

bool Coalescer::send_now(size_t bytes, bool final, int64_t now_ns) {
  if (final || bytes >= kFullBytes) return true;
  if (hold_until_ns_ != 0) return now_ns >= hold_until_ns_;
  const bool flowing = last_sent_bytes_ >= kBusyBytes && now_ns - last_sent_ns_ < kHoldNs;
  if (!flowing) return true;
  hold_until_ns_ = now_ns + kHoldNs;
  ++holds_;
  return false;
}

void Coalescer::sent(size_t bytes, int64_t now_ns) {
  last_sent_ns_ = now_ns;
  last_sent_bytes_ = bytes;
  hold_until_ns_ = 0;
}

}  // namespace kbgp::uplink
