// The one Control stream (its own connection): asks for the parameters of
// each new device connection, keeps the answers in the ControlCache, takes
// unsolicited updates pushed by the backend, exchanges application
// keepalives every 30 s and records the stream's status in the control
// region. The stream is reopened with exponential backoff and jitter
// whenever it ends.
//
// Several sessions from one device wait for one request. A lookup that gets
// no answer within 10 s (also when the stream stays down that long) fails.
// Callbacks run on a gRPC thread or the event thread, never while the
// client's mutex is held and never inside lookup().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kentik/ktbgp/v202203beta2/proxy.grpc.pb.h"
#include "uplink/backoff.h"
#include "uplink/async_stream.h"
#include "uplink/control_cache.h"
#include "uplink/grpc_channels.h"
#include "uplink/uplink_config.h"

namespace kbgp::shm {
struct ControlRegion;
}

namespace kbgp::uplink {

namespace pb = kentik::ktbgp::v202203beta2;
using ControlStream = AsyncStream<pb::ControlRequest, pb::ControlResponse>;

struct DeviceQuery {
  std::string proto = "BGP";
  std::string device_ip;
  uint32_t device_port = 0;
  std::string proxy_ip;
  uint32_t proxy_port = 0;
};

// `answer` is null on failure, then `error` says why.
using AnswerCallback = std::function<void(const ControlAnswer* answer, const std::string& error)>;
// An answer the backend pushed without a pending request (after the cache
// took it).
using PushCallback = std::function<void(const ControlAnswer& answer)>;

// What one Control answer (pushed or requested) said about a device's
// TCP-MD5 key, for the Md5Relay. The key is only in transit here: whoever
// receives a KeyNotice hands the key on and wipes it.
struct KeyNotice {
  std::string device_ip;
  ControlVerdict verdict = ControlVerdict::Allow;
  uint32_t ttl_seconds = 0;
  uint32_t device_id = 0;
  bool pushed = false;  // nobody asked: the backend sent it unsolicited
  std::string tcp_md5;  // empty = the device has no key
};
using KeyCallback = std::function<void(KeyNotice& notice)>;

constexpr int64_t kControlAnswerTimeoutNs = 10'000'000'000;
constexpr int64_t kControlKeepaliveNs = 30'000'000'000;

class ControlClient final : public ControlStream::Owner,
                            public std::enable_shared_from_this<ControlClient> {
 public:
  // `wake` tells the event thread to call tick() again soon (thread-safe);
  // `pushed` hears of unsolicited answers (called like `done` callbacks).
  ControlClient(const ChannelFactory& factory, const UplinkConfig& config,
                shm::ControlRegion* region, StreamQueue& queue, std::function<void()> wake,
                PushCallback pushed);

  // A cached answer right away, or nullopt and `done` is called later.
  // `skip_cache`: ask the backend even if an answer is cached (the cache
  // keeps no keys, so a TCP-MD5 key lookup always asks).
  std::optional<ControlAnswer> lookup(const DeviceQuery& query, AnswerCallback done,
                                      bool skip_cache = false);
  // Hears of every answer's TCP-MD5 key (or its absence), before the
  // answer's `done` callbacks and like them outside the mutex. Set once,
  // before the first tick().
  void set_key_callback(KeyCallback callback) { key_callback_ = std::move(callback); }
  // Drops the cached answer for a device (after a Data KILL).
  void forget(const std::string& proto, const std::string& device_ip);

  // Event thread: (re)opens the stream when due, sends keepalives, fails
  // lookups past their deadline, expires the cache. Returns the monotonic
  // time at which it wants to run next.
  int64_t tick(int64_t now_ns);
  // Cancels the stream and stops reopening it.
  void shutdown();
  bool stream_alive() const;

  void on_stream_metadata(ControlStream& stream, bool ok) override;
  void on_stream_read(ControlStream& stream, bool ok) override;
  void on_stream_write(ControlStream& stream, bool ok) override;
  void on_stream_done(ControlStream& stream, const grpc::Status& status) override;

 private:
  struct Waiter {
    AnswerCallback done;
    int64_t deadline_ns;
  };
  struct Pending {
    DeviceQuery query;
    std::vector<Waiter> waiters;
  };
  using PendingKey = std::pair<std::string, std::string>;  // proto, device ip
  using Calls = std::vector<std::pair<AnswerCallback, std::optional<ControlAnswer>>>;

  void open_stream_locked(int64_t now_ns);
  void enqueue_locked(pb::ControlRequest request);
  void send_keepalive_locked(int64_t now_ns);
  void write_next_locked();
  void mark_connected_locked();
  void handle_response_locked(const pb::ControlResponse& response, Calls& calls);
  static void run(Calls& calls, const std::string& error);

  const UplinkConfig& config_;
  shm::ControlRegion* region_;
  StreamQueue& stream_queue_;
  std::function<void()> wake_;
  PushCallback pushed_;
  KeyCallback key_callback_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::ProxyService::Stub> stub_;
  Metadata metadata_;

  mutable std::mutex mu_;
  std::shared_ptr<ControlStream> stream_;
  bool connected_ = false;
  bool answered_on_stream_ = false;  // a message arrived: credentials are good
  bool write_in_flight_ = false;
  bool read_in_flight_ = false;
  std::deque<pb::ControlRequest> queue_;
  bool shutting_down_ = false;
  bool opened_once_ = false;
  int64_t reopen_at_ns_ = 0;
  int64_t unreadable_at_ns_ = 0;  // monotonic: a failed read must end the stream by then
  Backoff backoff_;
  std::string last_error_ = "not connected yet";
  int64_t next_keepalive_ns_ = 0;
  int64_t keepalive_sent_mono_ns_ = 0;  // for the RTT; 0 = no keepalive outstanding
  ControlCache cache_;
  int64_t next_cache_expiry_ns_ = 0;
  std::map<PendingKey, Pending> pending_;
};

}  // namespace kbgp::uplink
