#include "uplink/batching.h"

#include <cstdint>
#include <cstring>

namespace kbgp::uplink {

namespace {
// The unread bytes as up to two contiguous spans, starting `skip` bytes
// after the read position (skip <= spans.size()).
RingConsumer::Spans skip_bytes(RingConsumer::Spans spans, size_t skip) {
  if (skip >= spans.first.size()) {
    size_t rest = skip - spans.first.size();
    return {spans.second.subspan(rest), {}};
  }
  return {spans.first.subspan(skip), spans.second};
}

// Marker all ones: compared 8 bytes at a time (the scan is per message, and
// a table dump is ~56 bytes per message).
bool marker_ok(const uint8_t* header) {
  uint64_t a, b;
  std::memcpy(&a, header, 8);
  std::memcpy(&b, header + 8, 8);
  return (a & b) == ~uint64_t{0};
}
}  // namespace

BatchPlan plan_batch(const RingConsumer& ring, size_t max_bytes, size_t start) {
  BatchPlan plan;
  // One snapshot: the producer may add more meanwhile.
  const RingConsumer::Spans all = ring.readable();
  const size_t total = all.size();
  if (total <= start) return plan;
  const RingConsumer::Spans spans = skip_bytes(all, start);
  const size_t available = total - start;
  const size_t first_size = spans.first.size();
  size_t offset = 0;
  while (available - offset >= kBgpHeaderSize) {
    // Headers are read in place; only one that straddles the wrap point is
    // copied out first.
    uint8_t straddling[kBgpHeaderSize];
    const uint8_t* header;
    if (offset + kBgpHeaderSize <= first_size) {
      header = spans.first.data() + offset;
    } else if (offset >= first_size) {
      header = spans.second.data() + (offset - first_size);
    } else {
      size_t n1 = first_size - offset;
      std::memcpy(straddling, spans.first.data() + offset, n1);
      std::memcpy(straddling + n1, spans.second.data(), kBgpHeaderSize - n1);
      header = straddling;
    }
    if (!marker_ok(header)) {
      plan.status = BatchPlan::Status::Corrupt;
      plan.error = "BGP marker is not all ones";
      return plan;
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

}  // namespace kbgp::uplink
