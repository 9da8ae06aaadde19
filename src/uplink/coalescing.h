// When a small batch of the up ring waits a moment for more (Nagle's idea,
// for DataRequests, and only under load).
//
// Why: every DataRequest costs about the same whatever its size: a wake-up
// of the uplink's event thread, one of its completion-queue thread for the
// write, one for the backend's WINDOW_UPDATE (gRPC answers every message it
// reads with one), and the same again in the backend. During a table dump a
// BGP speaker writes steadily, and sending whatever was there at each
// wake-up made ~870 requests of ~67 KB for a full table; those wake-ups,
// not the bytes, were most of the agent's CPU (bench/README.md, fourth
// round). Holding a small batch for at most kHoldNs while a flow is on
// halves the requests and the CPU of the agent and of the backend.
//
// Light traffic is never held: a batch waits only if a request of
// kBusyBytes or more went out less than kHoldNs before, so a lone UPDATE,
// a KEEPALIVE or a burst of a few changes goes out at once, as before; a
// message that comes right behind a big request (an End-of-RIB after a
// table) may wait up to kHoldNs. A batch of kFullBytes or more when the
// uplink looks, or a ring the listener closed, goes at once. Once held, a
// batch goes when its time is up, even if it grew past kFullBytes
// meanwhile: the listener does not wake a holding uplink (that would bring
// back a wake-up per read). The ring holds 512 KiB, so a session sending
// faster than 128 MB/s could be paced by holds for a moment; the device
// then waits on TCP, nothing is lost.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kbgp::uplink {

class Coalescer {
 public:
  static constexpr int64_t kHoldNs = 4'000'000;    // the longest a held batch waits
  static constexpr size_t kFullBytes = 128 * 1024;  // a batch this big goes at once
  static constexpr size_t kBusyBytes = 32 * 1024;   // a previous request this big, sent
                                                    // within kHoldNs, means a flow is on

  // A batch of `bytes` is ready at `now_ns`: true to send it now; false to
  // hold it until hold_until_ns() (the caller arranges to come back then).
  // `final`: no more bytes will come (the device closed): never held.
  bool send_now(size_t bytes, bool final, int64_t now_ns);

  // A data request of `bytes` went out at `now_ns`.
  void sent(size_t bytes, int64_t now_ns);

  // While holding: when the held batch must go (monotonic ns); 0 otherwise.
  int64_t hold_until_ns() const { return hold_until_ns_; }
  bool holding() const { return hold_until_ns_ != 0; }

  // A new stream starts (resume): nothing to hold over from the old one.
  void reset() {
    last_sent_ns_ = 0;
    last_sent_bytes_ = 0;
    hold_until_ns_ = 0;  // holds_ keeps counting: it is per session
  }

  // Batches held so far (for the session's end-of-session log line).
  uint64_t holds() const { return holds_; }

 private:
  int64_t last_sent_ns_ = 0;
  size_t last_sent_bytes_ = 0;
  int64_t hold_until_ns_ = 0;
  uint64_t holds_ = 0;
};

}  // namespace kbgp::uplink
