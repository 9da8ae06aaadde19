// The shared-memory layout between the supervisor and its workers.
//
// Two kinds of region, both memfds created and owned by the supervisor:
//
//  * one ControlRegion per agent: configuration view, worker heartbeats,
//    global counters, the Control stream status, the wake-up bitmaps and a
//    fixed table of session slots. Listener and uplink map it read-write,
//    the admin worker read-only.
//  * one SessionRegion per accepted TCP connection: a small header and two
//    single-producer/single-consumer byte rings, `up` (device -> backend,
//    written by the listener, read by the uplink) and `down` (backend ->
//    device, written by the uplink, read by the listener).
//
// Every region starts with a magic and a layout version; a process that finds
// another version refuses the region (a restarted worker built from a newer
// package must not misread an older supervisor's memory). Bump the version on
// any change to a struct below; docs/architecture.md describes them.
//
// Everything that more than one process writes or reads while another writes
// is a std::atomic that is lock-free (static_asserts below), so no process can
// ever wait on a lock held by another.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common/bad_input.h"
#include "common/endpoint.h"

namespace kbgp::shm {

constexpr uint32_t kControlMagic = 0x4b424731;  // "KBG1"
constexpr uint32_t kSessionMagic = 0x4b425331;  // "KBS1"
constexpr uint32_t kLayoutVersion = 7;  // 4: TCP-MD5 counters, SessionSlot::md5;
                                        // 5: SessionRegion listener/uplink records;
                                        // 6: ControlRegion::slots_in_use;
                                        // 7: ControlRegion::bad_input,
                                        //    512 KiB rings, ring wake-up flags

constexpr uint32_t kMaxSessions = 4096;
constexpr uint32_t kMaxListeners = 16;
constexpr uint32_t kDenyViewEntries = 256;  // deny-list entries the admin can show
// Per direction; power of two. 512 KiB: with the uplink keeping every
// DataRequest until the backend acknowledges it, a ring must hold about
// two full batches (batching.h) for the listener to keep reading while one
// is in flight; at 128 KiB the uplink ran 4x as many smaller batches and
// its CPU per byte (bench/relay --raw) was ~1.7x. Pages are allocated only
// when touched and given back when a ring is idle (release_free_pages).
constexpr size_t kRingCapacity = 512 * 1024;

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);
static_assert((kRingCapacity & (kRingCapacity - 1)) == 0);

enum class WorkerKind : uint32_t { Listener = 0, Uplink = 1, Admin = 2 };
constexpr uint32_t kWorkerCount = 3;

enum class WorkerState : uint32_t { Down = 0, Starting = 1, Ready = 2 };

struct alignas(64) WorkerStatus {
  std::atomic<uint32_t> pid;
  std::atomic<uint32_t> state;          // WorkerState
  std::atomic<int64_t> heartbeat_mono_ns;  // CLOCK_MONOTONIC, updated by the worker
  std::atomic<int64_t> started_ns;      // realtime, set by the supervisor
  std::atomic<uint64_t> restarts;       // set by the supervisor
};

// Written once by the supervisor before any worker starts; read-only after.
struct ConfigView {
  char instance_id[40];
  char version[64];
  char target[256];
  char api_email[256];
  char md5_interface[64];
  char listeners[kMaxListeners][64];
  uint32_t listener_count;
  uint32_t md5_enabled;
  uint32_t site_id;
  uint32_t multi;
  int64_t agent_start_ns;  // realtime
};

// Monotonic counters; Prometheus counters are read straight from here.
struct alignas(64) GlobalCounters {
  std::atomic<uint64_t> connections_accepted;   // supervisor
  std::atomic<uint64_t> connections_denied;     // supervisor: closed, deny-listed
  std::atomic<uint64_t> connections_rejected;   // supervisor: no free slot
  std::atomic<uint64_t> sessions_closed;        // supervisor: slot freed
  std::atomic<uint64_t> framing_errors;         // listener
  std::atomic<uint64_t> grpc_connections_open;  // uplink: gauge
  std::atomic<uint64_t> grpc_reconnects;        // uplink
  std::atomic<uint64_t> data_streams_open;      // uplink: gauge
  std::atomic<uint64_t> data_streams_failed;    // uplink
  std::atomic<uint64_t> control_requests;       // uplink
  std::atomic<uint64_t> devices_denied;         // uplink: BLOCK_IP answers
  std::atomic<uint64_t> deny_list_size;         // supervisor: gauge
  // Relayed traffic of all sessions, ended ones included (per-slot figures
  // vanish with the slot; Prometheus counters must not go down).
  std::atomic<uint64_t> bytes_up;               // listener: device -> backend
  std::atomic<uint64_t> bytes_down;             // listener: backend -> device
  std::atomic<uint64_t> messages_up;            // listener: BGP messages from devices
  std::atomic<uint64_t> messages_down;          // listener: BGP messages to devices
  // TCP-MD5 (--enable-md5-support), all written by the supervisor.
  std::atomic<uint64_t> md5_syns_seen;          // signed SYNs captured
  std::atomic<uint64_t> md5_syns_dropped;       // lost by the capture socket (buffer full)
  std::atomic<uint64_t> md5_lookups;            // Md5Lookups sent to the uplink
  std::atomic<uint64_t> md5_lookups_limited;    // signed SYNs not looked up (rate limits)
  std::atomic<uint64_t> md5_lookups_failed;     // lookups without an answer
  std::atomic<uint64_t> md5_keys_installed;     // keys installed or replaced
  std::atomic<uint64_t> md5_keys_removed;       // removed, expired or refused keys
  std::atomic<uint64_t> md5_key_errors;         // keys the kernel refused
  std::atomic<uint64_t> md5_keys;               // gauge: keys in force
  // The kernel's TcpExt counters (/proc/net/netstat), copied every second.
  std::atomic<uint64_t> kernel_md5_not_found;   // TCPMD5NotFound: a key here, segment unsigned
  std::atomic<uint64_t> kernel_md5_unexpected;  // TCPMD5Unexpected: signed, no key here
  std::atomic<uint64_t> kernel_md5_failure;     // TCPMD5Failure: wrong signature
};

struct alignas(64) ControlStreamStatus {
  std::atomic<uint32_t> connected;
  std::atomic<int64_t> since_ns;        // realtime of the last connect
  std::atomic<uint64_t> messages_rx;
  std::atomic<int64_t> last_tx_ns;      // realtime of the last keepalive sent
  std::atomic<int64_t> last_rx_ns;      // realtime of the last keepalive received
  std::atomic<int64_t> last_rtt_us;
};

enum class SlotState : uint32_t { Free = 0, Active = 1, Closing = 2 };

// One per possible session. The supervisor fills the identity fields and then
// publishes state=Active (release); readers check state and generation before
// and after reading (acquire) and discard what changed in between.
struct alignas(64) SessionSlot {
  std::atomic<uint32_t> state;       // SlotState
  std::atomic<uint32_t> generation;  // bumped by the supervisor on every reuse
  uint8_t session_id[16];            // v4 UUID, raw bytes
  Endpoint device;                   // peer address of the device
  Endpoint local;                    // our address the device reached
  int64_t accepted_ns;               // realtime
  // Listener-written statistics.
  std::atomic<uint64_t> msgs_up;
  std::atomic<uint64_t> bytes_up;
  std::atomic<uint64_t> bytes_down;
  std::atomic<uint32_t> peer_asn;        // from the device's OPEN (4-byte if present)
  std::atomic<uint32_t> peer_router_id;  // network byte order
  std::atomic<uint32_t> hold_time;
  // Uplink-written state.
  std::atomic<uint32_t> data_connected;   // Data stream established
  std::atomic<int64_t> data_since_ns;     // realtime
  std::atomic<uint64_t> data_requests;    // counter-up
  std::atomic<uint64_t> data_responses;   // counter-down
  std::atomic<uint32_t> device_id;
  // ServerMetadata of the Data stream as a JSON object, guarded by a seqlock:
  // the uplink makes metadata_seq odd, writes, makes it even again.
  std::atomic<uint32_t> metadata_seq;
  uint32_t metadata_len;
  char metadata_json[2048];
  char device_name[128];
  // Listener-written, after the older fields so their offsets stay put.
  std::atomic<uint64_t> msgs_down;  // whole BGP messages written to the device
  // Supervisor-written identity: 1 when a TCP-MD5 key for the device was
  // installed when the connection was accepted.
  uint32_t md5;
};

// The supervisor's deny-list as the admin sees it. The supervisor owns the
// list (it alone closes connections from deny-listed devices) and rewrites
// this bounded copy whenever the list changes, under a seqlock: `seq` odd
// while writing. Entries are sorted by `until_ns`, latest first; `total` is
// the size of the whole list, which may hold more than fit here.
struct DenyViewEntry {
  Endpoint device;   // address only (port 0)
  int64_t until_ns;  // realtime at which the deny ends
};

struct alignas(64) DenyListView {
  std::atomic<uint32_t> seq;
  uint32_t count;  // valid entries
  uint64_t total;
  DenyViewEntry entries[kDenyViewEntries];
};

// Bad input by kind (common/bad_input.h numbers the entries; spare ones
// stay zero so kinds can be added without a layout change).
constexpr uint32_t kFramingReasonSlots = 16;
constexpr uint32_t kBackendErrorSlots = 16;
constexpr uint32_t kBackendActionSlots = 8;
struct alignas(64) BadInputCounters {
  std::atomic<uint64_t> framing[kFramingReasonSlots];  // listener: sessions cut, by reason
  std::atomic<uint64_t> backend[kBackendErrorSlots];   // uplink: backend protocol errors
  std::atomic<uint64_t> actions[kBackendActionSlots];  // uplink: KILL / RESTART received
};
static_assert(bad_input::kFramingCount <= kFramingReasonSlots);
static_assert(bad_input::kBackendCount <= kBackendErrorSlots);
static_assert(bad_input::kActionCount <= kBackendActionSlots);

inline void count(BadInputCounters& c, bad_input::Framing f) {
  c.framing[static_cast<uint32_t>(f)].fetch_add(1, std::memory_order_relaxed);
}
inline void count(BadInputCounters& c, bad_input::Backend b) {
  c.backend[static_cast<uint32_t>(b)].fetch_add(1, std::memory_order_relaxed);
}
inline void count(BadInputCounters& c, bad_input::BackendAction a) {
  c.actions[static_cast<uint32_t>(a)].fetch_add(1, std::memory_order_relaxed);
}

struct ControlHeader {
  uint32_t magic;
  uint32_t version;
  uint64_t region_size;
  uint32_t max_sessions;
  uint32_t worker_count;
  uint64_t sessions_offset;  // offsetof(ControlRegion, sessions)
};

struct ControlRegion {
  ControlHeader header;
  ConfigView config;
  WorkerStatus workers[kWorkerCount];
  GlobalCounters counters;
  ControlStreamStatus control;
  // Wake-up bitmaps: a set bit says "look at this session". The setter then
  // writes the matching eventfd; the reader clears the bit before it looks.
  std::atomic<uint64_t> up_pending[kMaxSessions / 64];    // listener -> uplink
  std::atomic<uint64_t> down_pending[kMaxSessions / 64];  // uplink -> listener
  SessionSlot sessions[kMaxSessions];
  // Appended in layout version 3; everything above keeps its offset.
  DenyListView deny_list;
  // Appended in layout version 6: one bit per slot that may be in use, set
  // by the supervisor before it publishes the slot Active and cleared after
  // the slot is Free again. Readers that list sessions visit only these
  // slots: a scan of all 4096 would touch every page of the region (~10 MiB
  // resident in each reader, and allocated in the memfd, since shared
  // memory allocates a page even when it is only read).
  std::atomic<uint64_t> slots_in_use[kMaxSessions / 64];
  // Appended in layout version 7.
  BadInputCounters bad_input;
};

// Ring `closed` values.
enum class RingClose : uint32_t { Open = 0, Eof = 1, Abort = 2 };

// A single-producer/single-consumer byte ring. Positions count bytes since the
// session began and never wrap; the byte at position p lives at
// data[p % capacity]. write_pos is only written by the producer, read_pos
// only by the consumer.
//
// Wake-up flags (layout version 7, in what was padding): a side that is
// about to sleep until the other side moves sets its flag, then looks at the
// other side's position once more; the other side, after moving its
// position, wakes it only if the flag is set (and clears it). So a
// producer that publishes while its consumer is busy anyway (a write in
// flight) makes no system call and wakes no thread. Each flag lives on the
// cache line of the side that sets it.
struct alignas(64) RingHeader {
  std::atomic<uint64_t> write_pos;
  std::atomic<uint32_t> closed;   // RingClose, set by the producer after its last write
  std::atomic<uint32_t> producer_waiting;  // 1: the producer waits for free space
  alignas(64) std::atomic<uint64_t> read_pos;
  std::atomic<uint64_t> messages;  // consumer's count: DataRequests sent (up) /
                                   // unused (down)
  std::atomic<uint32_t> consumer_waiting;  // 1: the consumer waits for bytes
};
static_assert(std::atomic<uint32_t>::is_always_lock_free);

struct SessionHeader {
  uint32_t magic;
  uint32_t version;
  uint64_t region_size;
  uint64_t ring_capacity;
  uint32_t slot;
  uint32_t generation;
  uint8_t session_id[16];
  uint64_t up_offset;    // offset of the up ring data
  uint64_t down_offset;  // offset of the down ring data
};

// ---- Appended in layout version 5: what a restarted worker needs -----------
// (docs/architecture.md, "Restarts without loss"). Each record is written by
// one worker and read by its successor after a restart. A crash can fall
// between any two stores, so every record is one atomic value, or guarded by
// a number that is stored last, or double-buffered (fill the spare copy,
// then flip `current`).

// How far the listener followed the backend's byte stream (down): its
// successor must neither lose the backend's OPEN nor miscount messages.
struct DownFramingState {
  uint64_t position;   // down-stream byte position this state describes
  uint64_t messages;   // complete messages before `position`
  uint32_t body_left;  // body bytes of the current message still to come
  uint32_t open_len;   // bytes of the backend's OPEN collected in peer_open
  uint8_t header_len;  // bytes of the current header seen (19: in its body)
  uint8_t flags;       // kDown* bits
  uint8_t header[19];
};
constexpr uint8_t kDownCollectingOpen = 1, kDownOpenSeen = 2, kDownLost = 4;

// ListenerRecord::framing bits: the OPENs seen so far, for the maximum
// message size (RFC 8654 needs both sides' Extended Message capability).
constexpr uint32_t kDeviceOpenSeen = 1, kDeviceExtended = 2, kPeerOpenSeen = 4,
                   kPeerExtended = 8;
constexpr size_t kMaxOpenMessage = 4096;  // RFC 8654: an OPEN never exceeds 4096

struct alignas(64) ListenerRecord {
  // Bytes taken from the device socket. up.write_pos of them are whole
  // messages in the up ring; the rest (the start of a message not complete
  // yet) is staged in the up ring's free space right after write_pos.
  std::atomic<uint64_t> up_taken;
  std::atomic<uint32_t> framing;       // k*Open* / k*Extended bits
  std::atomic<uint32_t> down_current;  // which down_state is valid (0 or 1)
  DownFramingState down_state[2];
  uint8_t peer_open[kMaxOpenMessage];  // the backend's OPEN while it arrives
};

// The uplink's resume bookkeeping (the x-kbgp-resume extension): where each
// DataRequest not yet acknowledged ends in the up ring, so a restarted
// uplink can send exactly the same DataRequests again; and where the
// DataResponse being copied into the down ring started, so a replay of it
// skips what is already there.
constexpr uint32_t kRequestWindow = 64;  // unacknowledged DataRequests, at most
struct RequestEnd {
  std::atomic<uint64_t> number;  // counter-up value of the DataRequest; 0 = invalid
  std::atomic<uint64_t> end;     // up-ring position one past its last byte
};
struct DownStart {
  uint64_t number;  // counter-down value of the DataResponse being delivered
  uint64_t start;   // down-ring position of its first byte
};
struct alignas(64) UplinkRecord {
  RequestEnd requests[kRequestWindow];  // at number % kRequestWindow
  std::atomic<uint32_t> down_current;   // which down_start is valid (0 or 1)
  DownStart down_start[2];
};

struct SessionRegion {
  SessionHeader header;
  RingHeader up;
  RingHeader down;
  alignas(4096) uint8_t up_data[kRingCapacity];
  alignas(4096) uint8_t down_data[kRingCapacity];
  // Layout version 5.
  ListenerRecord listener;
  UplinkRecord uplink;
};

constexpr size_t kControlRegionSize = (sizeof(ControlRegion) + 4095) & ~size_t{4095};
constexpr size_t kSessionRegionSize = (sizeof(SessionRegion) + 4095) & ~size_t{4095};

// Initialises a freshly created (zeroed) region.
void init_control(ControlRegion* region);
void init_session(SessionRegion* region, uint32_t slot, uint32_t generation,
                  const uint8_t session_id[16]);
// Checks magic, version and sizes of a mapped region; false = refuse it.
bool valid_control(const ControlRegion* region, size_t mapped_size);
bool valid_session(const SessionRegion* region, size_t mapped_size);

// Wake-up bitmap helpers.
inline void mark_pending(std::atomic<uint64_t>* bitmap, uint32_t slot) {
  bitmap[slot / 64].fetch_or(uint64_t{1} << (slot % 64), std::memory_order_release);
}
// Calls fn(slot) for every set bit, clearing the bits first.
template <typename Fn>
void drain_pending(std::atomic<uint64_t>* bitmap, Fn&& fn) {
  for (uint32_t word = 0; word < kMaxSessions / 64; ++word) {
    uint64_t bits = bitmap[word].exchange(0, std::memory_order_acq_rel);
    while (bits) {
      int bit = __builtin_ctzll(bits);
      bits &= bits - 1;
      fn(word * 64 + static_cast<uint32_t>(bit));
    }
  }
}

}  // namespace kbgp::shm
