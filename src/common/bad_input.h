// Kinds of bad input the agent counts, one counter each in the control
// region (shm::BadInputCounters), shown by the admin as
// kbgp_framing_errors_by_reason_total{reason=...} /
// kbgp_backend_errors_total{kind=...} and in /admin/status Counters
// (docs/architecture.md, "Bad input"). The numbers index shared memory:
// append only, never renumber.
#pragma once

#include <cstdint>

namespace kbgp::bad_input {

// Why the listener cut a device's session (ipc::SessionEnd::FramingError).
enum class Framing : uint32_t {
  BadMarker = 0,
  LengthBelowMinimum = 1,  // header length field below 19
  LengthAboveMaximum = 2,  // above 4096, or 65535 after both OPENs announced RFC 8654
  ShortForType = 3,        // shorter than its type's minimum (OPEN 29, UPDATE 23, ...)
  TypeZero = 4,
  IncompleteTimeout = 5,   // a message started and not finished in time (slowloris)
  Count = 6,
};

// What the backend sent that the interface does not allow.
enum class Backend : uint32_t {
  DataUnknownAction = 0,     // DataResponse.action outside UNSPECIFIED/KILL/RESTART
  DataInvalidAck = 1,        // a resume acknowledgement that is unreadable or wrong
  DataBadCounters = 2,       // counter-up/-down missing, unreadable or repeated
  DataCountersDisagree = 3,  // readable counters the agent cannot resume from
  DataOversized = 4,         // a DataResponse beyond the gRPC message limit
  ControlUnknownAction = 5,  // ControlResponse.action outside UNSPECIFIED/BLOCK_IP/KEEPALIVE
  ControlStreamFailed = 6,   // Control stream failed on a message: unparseable or too large
  DataUnreadable = 7,        // a Data stream whose read failed and that did not end (unparseable)
  Count = 8,
};

// Actions the backend may send at any moment; counted because an operator
// looking at ended sessions wants to know who ended them.
enum class BackendAction : uint32_t {
  Kill = 0,     // DATA_ACTION_KILL
  Restart = 1,  // DATA_ACTION_RESTART
  Count = 2,
};

constexpr uint32_t kActionCount = static_cast<uint32_t>(BackendAction::Count);
constexpr uint32_t kFramingCount = static_cast<uint32_t>(Framing::Count);
constexpr uint32_t kBackendCount = static_cast<uint32_t>(Backend::Count);

// Label values for metrics and keys for /admin/status.
inline const char* framing_label(Framing f) {
  switch (f) {
    case Framing::BadMarker: return "bad_marker";
    case Framing::LengthBelowMinimum: return "length_below_minimum";
    case Framing::LengthAboveMaximum: return "length_above_maximum";
    case Framing::ShortForType: return "short_for_type";
    case Framing::TypeZero: return "type_zero";
    case Framing::IncompleteTimeout: return "incomplete_timeout";
    case Framing::Count: break;
  }
  return "unknown";
}

inline const char* backend_label(Backend b) {
  switch (b) {
    case Backend::DataUnknownAction: return "data_unknown_action";
    case Backend::DataInvalidAck: return "data_invalid_ack";
    case Backend::DataBadCounters: return "data_bad_counters";
    case Backend::DataCountersDisagree: return "data_counters_disagree";
    case Backend::DataOversized: return "data_oversized";
    case Backend::ControlUnknownAction: return "control_unknown_action";
    case Backend::ControlStreamFailed: return "control_stream_failed";
    case Backend::DataUnreadable: return "data_unreadable";
    case Backend::Count: break;
  }
  return "unknown";
}

inline const char* action_label(BackendAction a) {
  switch (a) {
    case BackendAction::Kill: return "kill";
    case BackendAction::Restart: return "restart";
    case BackendAction::Count: break;
  }
  return "unknown";
}

}  // namespace kbgp::bad_input
