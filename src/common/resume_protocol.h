// The x-kbgp-resume extension of the Data stream (docs/architecture.md,
// "Resuming a Data stream"). Shared by the agent (uplink) and the reference
// backend (kbgp-ingest); free of gRPC and protobuf so it is unit-tested.
//
// The interface (proxy-api.md) makes a Data stream resumable by session-id
// and counters, and asks each side to KILL on any disagreement. Messages a
// broken stream had in flight make the counters disagree, so plain resumes
// only work after a graceful RESTART. The extension closes that gap:
//
//  * Negotiation: the agent sends metadata `x-kbgp-resume: 1`; a backend that
//    knows the extension echoes it in its initial metadata. Without the echo
//    (or without the request) both sides keep the interface's strict rule.
//  * Keeping: each side keeps every message it counted until the other side
//    acknowledges it, at most kWindowMessages (and, on the backend,
//    kBackendWindowBytes) of them; a side at its limit sends nothing new.
//  * Acknowledging: a message whose action is kActionAck and whose only data
//    entry is the decimal count of the other side's messages received so far
//    (counter-up from the backend, counter-down from the agent). Acks are
//    never counted, kept or replayed.
//  * Resuming: a side's counter in the other side's metadata acknowledges
//    everything up to it; the messages after it are sent again first, byte
//    for byte (one that carried only an action goes again as an empty
//    message: RESTART and KILL are never repeated). A side that no longer
//    has what is missing, or sees the other side claim more than it sent,
//    KILLs as the interface says.
//  * Counting: a message counts when it is first written (not when the
//    write completes); a resent message is not counted again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kbgp::resume {

inline constexpr const char* kMetadataKey = "x-kbgp-resume";
inline constexpr const char* kMetadataValue = "1";
// DataRequest/DataResponse.action of an acknowledgement: outside the
// interface's DataAction values (proto3 enums carry unknown values intact),
// and only ever sent to a peer that negotiated the extension.
inline constexpr int kActionAck = 0x4b41;  // "KA"
// Messages a side keeps for a resume, at most.
inline constexpr uint64_t kWindowMessages = 64;
// Bytes of DataResponses the backend keeps for a resume, at most.
inline constexpr uint64_t kBackendWindowBytes = 512 * 1024;

// True when a metadata value asks for (or echoes) the extension.
bool requested(std::optional<std::string_view> value);

std::string encode_ack(uint64_t count);
std::optional<uint64_t> decode_ack(std::string_view data);

// What one side decides when the other side's counters arrive.
struct Decision {
  bool kill = false;
  std::string why;              // for the log when kill
  uint64_t resend_from = 0;     // first of our messages to send again (0: none)
  uint64_t resend_to = 0;       // last of them
};

// The agent, given the backend's initial metadata. `kept_from`: the lowest
// counter-up value the agent can resend from (its messages after it are
// all still kept).
Decision agent_decides(bool extension, uint64_t our_up, uint64_t our_down, uint64_t server_up,
                       uint64_t server_down, uint64_t kept_from);

// The backend, given the agent's metadata. `kept_from`: the lowest
// counter-down value the backend can resend from.
Decision backend_decides(bool extension, uint64_t our_up, uint64_t our_down, uint64_t agent_up,
                         uint64_t agent_down, uint64_t kept_from);

}  // namespace kbgp::resume
