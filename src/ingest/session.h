// A relayed BGP session: the collector connection of one proxied TCP
// connection (one agent session-id), its counters, and the Data stream
// currently attached to it, if any. Outlives its streams: when a stream
// breaks the session waits --grace-period seconds for a new stream with the
// same session-id and matching counters (a resume), buffering what the
// collector sends meanwhile. Loop-thread only; no gRPC here.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "ingest/collector_connection.h"
#include "ingest/event_loop.h"
#include "ingest/registry.h"

namespace kbgp::ingest {

class SessionTable;

// What a session needs from the Data stream attached to it.
class SessionStream {
 public:
  virtual ~SessionStream() = default;
  // Collector bytes wait in collector().read(), or the collector closed.
  virtual void collector_readable() = 0;
  // The collector's output buffer drained below its low mark.
  virtual void collector_drained() = 0;
  // The session was given to another stream or ended under this stream;
  // the stream must let go of it at once and finish with `why`.
  virtual void session_lost(const std::string& why) = 0;
  // The operator asked for a graceful restart of every Data stream.
  virtual void restart_requested() = 0;
};

class Session : public std::enable_shared_from_this<Session>,
                private CollectorConnection::Listener {
 public:
  // While detached: collector bytes buffered beyond this end the session.
  static constexpr size_t kDetachedBufferLimit = 4u << 20;
  // While attached: stop reading the collector when this much waits
  // (a DataResponse write is outstanding and the stream is slow).
  static constexpr size_t kAttachedInputLimit = 256u << 10;

  Session(SessionTable& table, event_base* base, std::string id, Device device,
          uint32_t grace_period_s);
  ~Session() override;

  // Starts connecting to the collector; false (with `error`) if that failed
  // at once.
  bool start(std::string* error);

  const std::string& id() const { return id_; }
  const Device& device() const { return device_; }
  CollectorConnection& collector() { return collector_; }
  bool ended() const { return ended_; }
  // Why the collector connection closed (empty while open).
  const std::string& collector_close_reason() const { return close_reason_; }
  SessionStream* stream() const { return stream_; }

  uint64_t counter_up() const { return counter_up_; }
  uint64_t counter_down() const { return counter_down_; }
  void count_request(size_t bytes) { ++counter_up_; bytes_up_ += bytes; }
  void count_response(size_t bytes) { ++counter_down_; bytes_down_ += bytes; }

  // The resume extension (common/resume_protocol.h): DataResponses counted
  // and kept until the agent acknowledges them, so that a resumed stream
  // can send the ones the agent missed again.
  void count_kept_response(std::string data);
  // The agent holds `count` DataResponses; false when it claims more than
  // were sent.
  bool acknowledge_responses(uint64_t count);
  // The lowest counter-down value from which every later response is kept.
  uint64_t kept_from() const { return counter_down_ - kept_.size(); }
  // Response `n` (kept_from() < n <= counter_down()); empty for one that
  // carried only an action.
  const std::string& kept_response(uint64_t n) const { return kept_[n - kept_from() - 1]; }
  // True while no more responses may be sent before acknowledgements.
  bool keep_window_full() const;
  // A stream without the extension: nothing is kept any more.
  void drop_kept();

  // Makes `s` the session's stream; a previous one gets session_lost().
  void attach(SessionStream* s);
  // `s` let go without ending the session: wait for a resume (or end now
  // when the grace period is 0).
  void detach(SessionStream* s);
  // Closes the collector connection (reset or orderly), logs the session's
  // totals, tells an attached stream, and removes it from the table.
  void end(const std::string& reason, bool reset);

 private:
  void on_collector_connected() override;
  void on_collector_readable() override;
  void on_collector_drained() override;
  void on_collector_closed(bool error, const std::string& reason) override;

  SessionTable& table_;
  std::string id_;
  Device device_;
  uint32_t grace_period_s_;
  CollectorConnection collector_;
  Timer grace_timer_;
  SessionStream* stream_ = nullptr;
  uint64_t counter_up_ = 0;
  uint64_t counter_down_ = 0;
  std::deque<std::string> kept_;  // responses kept_from()+1 .. counter_down_
  size_t kept_bytes_ = 0;
  uint64_t bytes_up_ = 0;
  uint64_t bytes_down_ = 0;
  int64_t started_ns_;
  std::string close_reason_;
  bool ended_ = false;
};

}  // namespace kbgp::ingest
