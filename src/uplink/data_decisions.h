// The uplink's decisions on what the backend sends on a Data stream, apart
// from the stream itself: session.cc applies them, the fuzzers
// (tests/fuzz/fuzz_data_response.cc, fuzz_resume.cc) drive them with
// arbitrary metadata, actions and data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/resume_protocol.h"
#include "common/ring.h"
#include "kentik/ktbgp/v202203beta2/proxy.pb.h"
#include "uplink/metadata.h"

namespace kbgp::uplink {

// The backend's initial metadata on a Data stream, judged against the
// counters the stream was opened with (common/resume_protocol.h).
struct StreamOpenVerdict {
  std::optional<std::string> server_up_text;    // counter-up as sent, if sent
  std::optional<std::string> server_down_text;  // counter-down as sent, if sent
  uint64_t server_up = 0;                       // parsed; 0 when unreadable
  uint64_t server_down = 0;
  bool extension = false;  // the backend echoed x-kbgp-resume
  resume::Decision decision;
};
// `kept_from`: the lowest counter-up value the agent can resend from.
StreamOpenVerdict judge_stream_open(const Metadata& md, uint64_t open_up, uint64_t open_down,
                                    uint64_t kept_from);

// What one DataResponse asks of the session.
enum class ResponseKind {
  Ack,    // resume acknowledgement (action kActionAck): never relayed
  Kill,   // DATA_ACTION_KILL: end the session
  Relay,  // anything else: its data goes to the device (unknown actions too)
};
struct ResponseReading {
  ResponseKind kind = ResponseKind::Relay;
  // Ack: the acknowledged count; nullopt when unreadable or the extension
  // was not negotiated (an invalid acknowledgement).
  std::optional<uint64_t> ack_count;
  bool restart = false;  // Relay: DATA_ACTION_RESTART
};
ResponseReading read_response(const kentik::ktbgp::v202203beta2::DataResponse& response,
                              bool extension);

// Copies one DataResponse's data entries into the down ring, over as many
// calls as the ring's free space needs. The response must stay unchanged
// between start() and the copy() that completes it.
class DownCopy {
 public:
  // A new response whose first `skip` bytes are in the down ring already
  // (a resent response); a skip beyond its size skips all of it.
  void start(const kentik::ktbgp::v202203beta2::DataResponse& response, uint64_t skip);
  struct Progress {
    bool wrote = false;     // bytes went into the ring: wake the listener
    bool complete = false;  // every byte is in the ring
  };
  Progress copy(const kentik::ktbgp::v202203beta2::DataResponse& response, RingProducer& ring);

 private:
  int index_ = 0;      // data entry being copied
  size_t offset_ = 0;  // bytes of it copied
};

}  // namespace kbgp::uplink
