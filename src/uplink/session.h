// One proxied TCP connection as the uplink sees it: the session region's two
// rings on one side, a Data stream on the other, and the state machine
// between them:
//
//   AwaitControl --answer--> Streaming --stream done--> Done
//        |                     |  ^  RESTART from the backend: finish this
//        |                     |  |  stream, open the next one with the same
//        |                     +--+  session-id and the counters so far
//        +-- BLOCK_IP / no answer / device aborted --> Done
//
// Every method may be called from any thread (the event thread pumps on
// wake-ups, gRPC threads deliver reactions); all state is under mu_. Once
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
#include "uplink/bidi_stream.h"
#include "uplink/channel_pool.h"
#include "uplink/control_answer.h"
#include "uplink/uplink_config.h"

namespace kbgp::uplink {

class ControlClient;
namespace pb = kentik::ktbgp::v202203beta2;
using DataStream = BidiStream<pb::DataRequest, pb::DataResponse>;

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
  ControlClient* control_client = nullptr;
  // Thread-safe hand-offs to the event thread, run there in call order.
  std::function<void(const DenyNotice&)> denied;
  std::function<void(uint32_t slot, uint32_t generation, ipc::SessionEnd reason)> ended;
};

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
  // Event thread, about once a second: cancels a stream that did not end
  // in time after a KILL.
  void tick(int64_t now_ns);
  // The uplink is going away: cut the stream (or end at once without one).
  void abort();

  void on_stream_metadata(DataStream& stream, bool ok) override;
  void on_stream_read(DataStream& stream, bool ok) override;
  void on_stream_write(DataStream& stream, bool ok) override;
  void on_stream_done(DataStream& stream, const grpc::Status& status) override;

 private:
  enum class Phase { AwaitControl, Streaming, Done };
  enum class InFlight { None, Data, Kill, Restart };
  enum class Restart { None, Requested, Sent };

  void open_stream_locked(bool resume);
  void pump_locked();
  void pump_up_locked();
  void pump_down_locked();
  void begin_kill_locked(ipc::SessionEnd reason);
  void finish_locked(ipc::SessionEnd reason);
  void close_down_locked(shm::RingClose how);
  void response_delivered_locked();
  void notify_listener();
  void publish_slot_locked(const Metadata* server_metadata);
  void let_go_locked();
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

  // State of the current stream, reset when one opens.
  std::shared_ptr<DataStream> stream_;
  InFlight in_flight_ = InFlight::None;
  size_t in_flight_bytes_ = 0;
  bool read_in_flight_ = false;
  bool read_closed_ = false;
  bool writes_done_ = false;
  bool kill_wanted_ = false;
  bool down_closed_ = false;  // we set down.closed (never changed afterwards)
  bool down_holding_ = false;  // stream_->incoming() is not all in the down ring yet
  int down_index_ = 0;
  size_t down_offset_ = 0;
  uint64_t open_counter_up_ = 0;
  uint64_t open_counter_down_ = 0;
  Restart restart_ = Restart::None;
  std::optional<ipc::SessionEnd> end_reason_;  // decided; applied when the stream is done
  int64_t cancel_at_ns_ = 0;                   // monotonic; 0 = none
};

}  // namespace kbgp::uplink
