// Cutting the up ring into DataRequest payloads: whole BGP messages only, up
// to kMaxBatchBytes per batch (at least one message even if it is bigger). The
// listener promises to write only whole, validated messages, but a bug or a
// compromised listener must not make the uplink read past what is there or
// relay a desynchronised stream, so every header is checked again here.
#pragma once

#include <cstddef>

#include "common/ring.h"

namespace kbgp::uplink {

// 256 KiB: every DataRequest costs the same handful of thread hand-offs in
// gRPC and an acknowledgement back (x-kbgp-resume), whatever its size; at
// 64 KiB those dominated the uplink's CPU under a table dump. Light
// traffic is not delayed: a batch goes out with whatever whole messages
// are there when the previous write completes (under a steady flow a
// small one may wait a moment for more: coalescing.h).
constexpr size_t kMaxBatchBytes = 256 * 1024;
constexpr size_t kBgpHeaderSize = 19;
constexpr size_t kBgpMaxLength = 65535;  // RFC 8654 extended messages

struct BatchPlan {
  enum class Status {
    Ready,       // `bytes` (> 0) of whole messages can be sent
    Empty,       // nothing in the ring
    Incomplete,  // bytes are there, but not one whole message yet
    Corrupt,     // a header that no listener should have written
  };
  Status status = Status::Empty;
  size_t bytes = 0;
  size_t messages = 0;
  const char* error = "";  // static text for Corrupt
};

// Plans the next batch, starting `offset` bytes after the consumer's read
// position (bytes before it were sent and are kept for a resume), without
// consuming.
BatchPlan plan_batch(const RingConsumer& ring, size_t max_bytes = kMaxBatchBytes,
                     size_t offset = 0);

// The batch itself is copied by RingConsumer::peek, straight into the
// request gRPC sends (wire_request.h).

}  // namespace kbgp::uplink
