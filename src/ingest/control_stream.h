// One Control stream (loop-thread handler). Answers every ControlRequest
// from the registry, echoes request keepalives, and sends its own
// application keepalive every --keepalive-interval seconds. Unless
// --md5-push=false it pushes the TCP-MD5 keys of the agent's devices
// unasked (ingest/md5_push.h): at open, every half --control-ttl, and what
// changed after a registry reload. Answers are
// queued: one StartWrite outstanding at a time; reading pauses while the
// queue is long (a client that does not read cannot grow it unboundedly).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "ingest/backend.h"
#include "ingest/loop_reactor.h"
#include "kentik/ktbgp/v202203beta2/proxy.pb.h"

namespace kbgp::ingest {

namespace pb = kentik::ktbgp::v202203beta2;

class ControlStream final : public StreamEvents<pb::ControlRequest> {
 public:
  using Reactor = LoopReactor<pb::ControlRequest, pb::ControlResponse>;

  ControlStream(Backend& backend, std::string email, std::string peer, uint32_t site);

  // Loop thread: the stream is ready.
  void open(Reactor* reactor);

  void on_read_done(bool ok, pb::ControlRequest request) override;
  void on_write_done(bool ok) override;
  void on_cancel() override;

  // Loop thread: ends the stream with UNAVAILABLE (backend shutdown).
  void shut_down();
  // Loop thread: the registry was reloaded; push the keys that changed.
  void registry_reloaded();

 private:
  static constexpr size_t kMaxQueued = 64;

  pb::ControlResponse answer(const pb::ControlRequest& request) const;
  // The answer for a registered device, and for an address that is not.
  pb::ControlResponse device_answer(const Device& d) const;
  static pb::ControlResponse block_answer(const std::string& device_ip);
  void push_all_keys();
  void on_key_refresh_timer();
  void enqueue(pb::ControlResponse response);
  void write_next();
  void maybe_read();
  void on_keepalive_timer();
  void finish(grpc::Status status);

  Backend& backend_;
  std::string email_;
  std::string peer_;
  uint32_t site_;
  Reactor* reactor_ = nullptr;  // null once finish() was called
  std::deque<pb::ControlResponse> queue_;
  bool writing_ = false;
  bool reading_ = false;
  bool reads_ended_ = false;
  std::optional<grpc::Status> finish_status_;  // finish once the queue drained
  std::unique_ptr<Timer> keepalive_;
  std::unique_ptr<Timer> key_refresh_;
  std::shared_ptr<const Registry> pushed_from_;  // the registry key changes are diffed from
  uint64_t requests_ = 0;
};

}  // namespace kbgp::ingest
