// One Data stream (loop-thread handler): the gRPC side of one relayed TCP
// connection. On open it creates the session (new session-id, counters 0/0:
// connect to the collector), resumes it (known session-id, counters equal to
// ours) or answers KILL (counters disagree, or nonzero for an unknown id).
//
// Relay and flow control:
//  * DataRequest.data goes to the collector's output buffer; the next read
//    is started only while that buffer is below its high mark.
//  * collector bytes go out as DataResponses of at most 64 KiB, one write
//    outstanding; meanwhile they wait in the collector's input buffer, which
//    stops reading the socket above a limit.
// Endings:
//  * collector closed: send what is left, finish OK, session over;
//  * agent half-close: shutdown(SHUT_WR) towards the collector, relay until
//    the collector closes, finish OK;
//  * KILL from the agent: reset the collector connection, finish OK;
//  * RESTART (from the agent, or from the operator via SIGUSR1): stop
//    sending, send RESTART, finish OK after the agent's half-close; the
//    session waits for a resume;
//  * stream broken/cancelled: the session waits --grace-period seconds for a
//    resume.
// Counters count every message, action-only ones included: counter-up the
// DataRequests read, counter-down the DataResponses whose write completed.
//
// With the agent's x-kbgp-resume (common/resume_protocol.h) the stream echoes
// it and then: counts a DataResponse when it starts writing it and keeps it
// in the Session until the agent acknowledges it; acknowledges the agent's
// DataRequests; on a resume sends again, first, the kept responses the
// agent's counter-down shows it missed (and the agent does the same with its
// DataRequests), so a broken stream loses nothing. Acknowledgements are
// neither counted nor relayed.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "ingest/backend.h"
#include "ingest/call_metadata.h"
#include "ingest/loop_reactor.h"
#include "ingest/session.h"
#include "kentik/ktbgp/v202203beta2/proxy.pb.h"

namespace kbgp::ingest {

namespace pb = kentik::ktbgp::v202203beta2;

class DataStream final : public StreamEvents<pb::DataRequest>, public SessionStream {
 public:
  using Reactor = LoopReactor<pb::DataRequest, pb::DataResponse>;

  static constexpr size_t kMaxMessageBytes = 64u << 10;
  // How long a RESTART may wait for the agent's half-close.
  static constexpr double kRestartTimeoutS = 30;
  // Acknowledgements (extension): one per DataRequest cost the agent a read
  // completion on a gRPC thread, and us a write, for every small batch of a
  // table dump. So acknowledge every kAckEveryRequests requests or
  // kAckEveryBytes bytes (well inside the agent's window of 63 requests and
  // its 512 KiB ring, which holds the bytes until then), or kAckDelayS after
  // the first one not acknowledged yet. Data is never delayed by this.
  static constexpr uint64_t kAckEveryRequests = 16;
  static constexpr size_t kAckEveryBytes = 128u << 10;
  static constexpr double kAckDelayS = 0.02;

  DataStream(Backend& backend, DataCallParams params, Device device, std::string email,
             std::string peer);

  // Loop thread: the stream is ready; attach, create or refuse a session.
  void open(Reactor* reactor);

  // StreamEvents
  void on_read_done(bool ok, pb::DataRequest request) override;
  void on_write_done(bool ok) override;
  void on_cancel() override;

  // SessionStream
  void collector_readable() override { pump(); }
  void collector_drained() override { maybe_read(); }
  void session_lost(const std::string& why) override;
  void restart_requested() override;

 private:
  void open_new_session();
  void resume_session(std::shared_ptr<Session> session);
  void send_counters(uint64_t up, uint64_t down);
  void send_kill();  // KILL, then finish OK
  void relay_up(const pb::DataRequest& request);
  void on_agent_half_close();
  void start_restart(bool by_agent);
  void maybe_complete_restart();
  void pump();
  void maybe_read();
  // An acknowledgement from the agent (extension); false ends the stream.
  bool on_acknowledgement(const pb::DataRequest& request);
  // Extension: whether an acknowledgement should go out now; arms the
  // delay timer when one is owed but not due yet.
  bool ack_due();
  void stream_broken(const std::string& why);
  // Lets go of the session: bytes of an unfinished write go back in front of
  // the collector's input; `wait_for_resume` detaches (grace period).
  void release_session(bool wait_for_resume);
  void finish(grpc::Status status);
  log::Field sid() const { return {"session_id", params_.session_id}; }

  Backend& backend_;
  DataCallParams params_;
  Device device_;
  std::string email_;
  std::string peer_;
  Reactor* reactor_ = nullptr;  // null once finish() was called
  std::shared_ptr<Session> session_;

  bool reading_ = false;      // a read is outstanding
  bool reads_ended_ = false;  // the agent half-closed (or the stream broke)
  bool writing_ = false;      // a write is outstanding
  enum class Write { Action, Ack, Resend, Data } write_kind_ = Write::Data;
  std::string inflight_;      // collector bytes in the outstanding write (no extension)
  bool extension_ = false;    // the agent asked for x-kbgp-resume; we echo it
  uint64_t acked_up_sent_ = 0;  // counter-up in our last acknowledgement
  size_t unacked_bytes_ = 0;    // bytes relayed since then
  bool ack_delay_over_ = false; // ack_timer_ fired: acknowledge at the next chance
  std::unique_ptr<Timer> ack_timer_;
  uint64_t resend_next_ = 0;    // next kept DataResponse to send again; 0 = none
  uint64_t resend_to_ = 0;
  pb::DataAction action_pending_ = pb::DATA_ACTION_UNSPECIFIED;   // to send next
  pb::DataAction action_inflight_ = pb::DATA_ACTION_UNSPECIFIED;  // being written
  bool killed_ = false;       // KILL queued: nothing else is sent
  bool restarting_ = false;   // no more collector bytes on this stream
  bool restart_sent_ = false; // our RESTART was written
  bool agent_closed_ = false; // half-close seen, SHUT_WR requested
  bool finishing_ = false;
  grpc::Status finish_status_;
  std::unique_ptr<Timer> restart_timer_;
};

}  // namespace kbgp::ingest
