// Streams (Control and Data) that gRPC may still touch: the uplink waits for
// zero before destroying channels at exit, and leaves without destructors
// if a stream did not finish in time.
#pragma once

#include <atomic>

namespace kbgp::uplink {

inline std::atomic<int> g_live_streams{0};

// A member that counts its owner from construction to the end of its
// destruction: make it the first member, so it goes last.
struct LiveStream {
  LiveStream() { g_live_streams.fetch_add(1, std::memory_order_relaxed); }
  ~LiveStream() { g_live_streams.fetch_sub(1, std::memory_order_release); }
  LiveStream(const LiveStream&) = delete;
  LiveStream& operator=(const LiveStream&) = delete;
};

}  // namespace kbgp::uplink
