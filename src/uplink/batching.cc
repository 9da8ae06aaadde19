#include "uplink/batching.h"

#include <cstdint>

namespace kbgp::uplink {

BatchPlan plan_batch(const RingConsumer& ring, size_t max_bytes, size_t start) {
  BatchPlan plan;
  const size_t total = ring.available();  // one snapshot: the producer may add more
  if (total <= start) return plan;
  const size_t available = total - start;
  size_t offset = 0;
  while (available - offset >= kBgpHeaderSize) {
    uint8_t header[kBgpHeaderSize];
    ring.peek(start + offset, header, sizeof header);
    for (size_t i = 0; i < 16; ++i) {
      if (header[i] != 0xff) {
        plan.status = BatchPlan::Status::Corrupt;
        plan.error = "BGP marker is not all ones";
        return plan;
      }
    }
    size_t length = (static_cast<size_t>(header[16]) << 8) | header[17];
    if (length < kBgpHeaderSize || length > kBgpMaxLength) {
      plan.status = BatchPlan::Status::Corrupt;
      plan.error = "BGP message length out of range";
      return plan;
    }
    if (length > available - offset) break;          // the rest is not there yet
    if (offset > 0 && offset + length > max_bytes) break;  // next batch
    offset += length;
    ++plan.messages;
  }
  plan.bytes = offset;
  plan.status = offset ? BatchPlan::Status::Ready : BatchPlan::Status::Incomplete;
  return plan;
}

void copy_batch(const RingConsumer& ring, size_t n, std::string& out, size_t offset) {
  out.resize(n);
  if (n) ring.peek(offset, reinterpret_cast<uint8_t*>(out.data()), n);
}

}  // namespace kbgp::uplink
