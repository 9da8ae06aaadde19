// One proxied TCP connection as the uplink sees it: the session region's two
// rings on one side, a Data stream on the other, and the state machine
// between them:
//
//   AwaitControl --answer--> Streaming --stream done--> Done
//        |                     |  ^  RESTART from the backend: finish this
//        |                     |  |  stream, open the next one with the same
//        |                     +--+  session-id and the counters so far
//        |                     |  ^
//        |      stream failed  v  |  after a backoff: resume on a new stream
//        |                  Reconnecting --gave up (kResumeGiveUpNs)--> Done
//        +-- BLOCK_IP / no answer / device aborted --> Done
//
// Resuming (common/resume_protocol.h): with a backend that echoes
// x-kbgp-resume, DataRequests stay in the up ring until the backend
// acknowledges them (ResumeLedger records where each ends), so the ones a
// broken stream lost are sent again; DataResponses the backend resends are
// counted once, and the part of one already copied into the down ring is
// skipped. Without the echo the interface's strict rule holds: bytes are
// freed when gRPC took them, and disagreeing counters mean KILL.
//
// Every method may be called from any thread (the event thread pumps on
// wake-ups, the StreamQueue's thread delivers completions); all state is
// under mu_. Once
// Done, the session writes nothing more into shared memory: the supervisor
// may reuse the slot as soon as it has our SessionDone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/endpoint.h"
#include "common/ipc.h"
#include "common/ring.h"
#include "common/shm.h"
#include "kentik/ktbgp/v202203beta2/proxy.grpc.pb.h"
#include "uplink/async_stream.h"
#include "uplink/channel_pool.h"
#include "uplink/coalescing.h"
#include "uplink/backoff.h"
#include "uplink/control_answer.h"
#include "uplink/data_decisions.h"
#include "uplink/resume_ledger.h"
#include "uplink/uplink_config.h"
#include "uplink/wire_request.h"

namespace kbgp::uplink {

class ControlClient;
namespace pb = kentik::ktbgp::v202203beta2;
using DataStream = AsyncStream<WireDataRequest, pb::DataResponse>;

// What a deny-listing needs on the event thread.
struct DenyNotice {
  Endpoint device;
  Endpoint local;
  std::string session_id;
  uint32_t ttl_seconds = 0;
  uint32_t ttl_counter = 0;
  uint32_t slot = 0;
  uint32_t generation = 0;
};

// Shared by all sessions; owned by the Uplink, which outlives them.
struct SessionEnv {
  shm::ControlRegion* control = nullptr;
  int down_ready_fd = -1;
  const UplinkConfig* config = nullptr;
  ChannelPool* pool = nullptr;
  StreamQueue* stream_queue = nullptr;  // drives every stream
  ControlClient* control_client = nullptr;
  // Thread-safe hand-offs to the event thread, run there in call order.
  std::function<void(const DenyNotice&)> denied;
  std::function<void(uint32_t slot, uint32_t generation, ipc::SessionEnd reason)> ended;
  // Asks for a tick() of the session at (or soon after) monotonic `at_ns`.
  std::function<void(uint32_t slot, uint32_t generation, int64_t at_ns)> wake_at;
};

// A Data stream that failed is resumed with backoff for this long; then the
// session ends (the backend has long dropped it: its grace period is 60 s).
constexpr int64_t kResumeGiveUpNs = 120'000'000'000;

struct SessionIdentity {
  uint32_t slot = 0;
  uint32_t generation = 0;
  std::string session_id;  // canonical UUID text
  Endpoint device;         // as accepted (possibly v4-mapped)
  Endpoint local;
};

class Session final : public DataStream::Owner, public std::enable_shared_from_this<Session> {
 public:
  Session(SessionEnv& env, SessionIdentity identity, SharedMapping region);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const SessionIdentity& identity() const { return id_; }

  // Control's verdict on the device, or why there is none.
  void on_control_answer(const ControlAnswer& answer);
  void on_control_failure(const std::string& why);
  // The rings changed (new up bytes, down space freed, a ring closed).
  void pump();
  // Event thread, about once a second and when asked by wake_at: cancels a
  // stream that did not end in time after a KILL, reopens a failed one.
  void tick(int64_t now_ns);
  // The uplink is going away: KILL the stream so the backend ends the
  // session now (or end at once without one).
  void abort();
  // The backend blocked the device (BLOCK_IP for another of its connections,
  // or pushed): KILL the Data stream, reset the device connection.
  void deny();

  void on_stream_metadata(DataStream& stream, bool ok) override;
  void on_stream_read(DataStream& stream, bool ok) override;
  void on_stream_write(DataStream& stream, bool ok) override;
  void on_stream_done(DataStream& stream, const grpc::Status& status) override;

 private:
  enum class Phase { AwaitControl, Streaming, Reconnecting, Done };
  enum class InFlight { None, Data, Resend, Ack, Kill, Restart };
  enum class Restart { None, Requested, Sent };

  void open_stream_locked(bool resume);
  // Compares the backend's counters with ours: resume, or KILL.
  void judge_metadata_locked(const Metadata& md);
  void pump_locked();
  void pump_up_locked();
  void pump_down_locked();
  void begin_kill_locked(ipc::SessionEnd reason);
  void finish_locked(ipc::SessionEnd reason);
  void close_down_locked(shm::RingClose how);
  void response_delivered_locked();
  // Counts a DataRequest we are about to write (extension: before the
  // write; strict: once gRPC took it) and records where it ends.
  void count_request_locked(uint64_t end);
  // The backend acknowledged `count` DataRequests: free their ring bytes.
  bool acknowledged_locked(uint64_t count);
  bool retryable(const grpc::Status& status) const;
  // The stream failed because a DataResponse exceeded gRPC's size limit.
  static bool oversized_message(const grpc::Status& status);
  void schedule_reopen_locked(const grpc::Status& status);
  void notify_listener();
  void publish_slot_locked(const Metadata* server_metadata);
  void let_go_locked();
  // Returns the down ring's pages once it is drained and was quiet a tick.
  void release_idle_down_locked();
  // Writes `n` up-ring bytes from `offset` past the read position into a request.
  WireDataRequest::Fill fill_from_up(size_t offset) const;
  shm::SessionSlot& slot() const;
  std::string device_ip() const;

  SessionEnv& env_;
  const SessionIdentity id_;
  SharedMapping region_map_;
  shm::SessionRegion* region_;
  RingConsumer up_;
  RingProducer down_;

  std::mutex mu_;
  Phase phase_ = Phase::AwaitControl;
  ControlAnswer answer_;
  uint64_t counter_up_ = 0;    // DataRequests written (all streams)
  uint64_t counter_down_ = 0;  // DataResponses received and delivered (all streams)
  ResumeLedger ledger_;
  uint64_t sent_end_ = 0;     // up-ring position after the last DataRequest counted
  uint64_t acked_up_ = 0;     // DataRequests the backend acknowledged
  uint64_t down_skip_ = 0;    // bytes of the next DataResponse already in the down ring
  Backoff reopen_backoff_;
  int64_t reopen_at_ns_ = 0;     // monotonic; 0 = none
  int64_t give_up_at_ns_ = 0;    // monotonic; 0 = not reconnecting

  // State of the current stream, reset when one opens.
  std::shared_ptr<DataStream> stream_;
  InFlight in_flight_ = InFlight::None;
  size_t in_flight_bytes_ = 0;
  Coalescer coalescer_;  // when a small batch waits for more
  bool read_in_flight_ = false;
  bool read_closed_ = false;
  bool writes_done_ = false;
  bool kill_wanted_ = false;
  bool down_closed_ = false;  // we set down.closed (never changed afterwards)
  bool down_holding_ = false;  // stream_->incoming() is not all in the down ring yet
  // Down-ring pages go back to the system once the ring is drained and a
  // tick passed without a write (release_idle_down_locked).
  uint64_t down_pos_at_tick_ = 0;  // down write position at the last tick
  bool down_dirty_ = false;        // written since the last release
  DownCopy down_copy_;  // of stream_->incoming() while down_holding_
  uint64_t open_counter_up_ = 0;
  uint64_t open_counter_down_ = 0;
  bool metadata_seen_ = false;  // counters compared: writes may start
  bool extension_ = false;      // the backend echoed x-kbgp-resume
  uint64_t resend_next_ = 0;    // next kept DataRequest to send again; 0 = none
  uint64_t resend_to_ = 0;
  uint64_t acked_down_sent_ = 0;  // counter-down in our last acknowledgement
  Restart restart_ = Restart::None;
  std::optional<ipc::SessionEnd> end_reason_;  // decided; applied when the stream is done
  int64_t cancel_at_ns_ = 0;                   // monotonic; 0 = none
  int64_t unreadable_at_ns_ = 0;  // monotonic: a failed read must end the stream by then
  int64_t metadata_wait_at_ns_ = 0;  // monotonic: empty initial metadata is judged then
};

}  // namespace kbgp::uplink
