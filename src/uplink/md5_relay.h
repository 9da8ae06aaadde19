// The uplink's part in TCP-MD5 (--enable-md5-support): it carries keys from
// Control answers to the supervisor and asks Control when the supervisor
// saw a signed SYN from a device without a key (Md5Lookup).
//
//  * An answer with tcp_md5 -> InstallMd5Key{Install}.
//  * An answer without one -> InstallMd5Key{NoKey}, or {Blocked} for
//    BLOCK_IP, when it matters: it answers the supervisor's lookup, the
//    backend pushed it (a key removed or a device gone from its registry),
//    or we sent a key for that device before. Plain devices' ordinary
//    answers cause no message.
//  * A lookup always asks the backend (the answer cache keeps no keys); a
//    BLOCK_IP answer to it deny-lists the device like a session's would.
//  * A lookup that fails -> InstallMd5Key{Unanswered}.
//
// The key exists here only between the Control answer and the message to
// the supervisor; each copy is wiped after use and none is logged. Event
// thread only (the ControlClient's callbacks are posted there).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/endpoint.h"
#include "common/ipc.h"
#include "uplink/control_client.h"

namespace kbgp::uplink {

class Md5Relay : public std::enable_shared_from_this<Md5Relay> {
 public:
  struct Hooks {
    // Sends a message to the supervisor; false when the channel is gone.
    std::function<bool(const void* msg, size_t len)> send;
    // Runs a task on the event thread (thread-safe).
    std::function<void(std::function<void()>)> post;
    // A BLOCK_IP answer to a lookup: deny-list the device (logged there).
    std::function<void(const Endpoint& device, const Endpoint& local, uint32_t ttl_seconds,
                       uint32_t ttl_counter)>
        deny;
  };
  static constexpr size_t kMaxAsked = 4096;
  static constexpr size_t kMaxKeyed = 65536;
  static constexpr int64_t kAskedTimeoutNs = 20'000'000'000;

  // `enabled`: the agent runs with --enable-md5-support (ConfigView); when
  // not, keys are dropped here and lookups answered Unanswered.
  Md5Relay(bool enabled, ControlClient* control, Hooks hooks);

  void on_lookup(const ipc::Md5Lookup& msg, int64_t now_mono_ns);
  // Wipes notice.tcp_md5 before it returns.
  void on_key_notice(KeyNotice& notice);
  // Forgets lookups nobody answered (the ControlClient fails them after 10 s).
  void tick(int64_t now_mono_ns);

 private:
  void on_lookup_done(const std::string& ip, const ControlAnswer* answer);
  void send_key(const Endpoint& device, ipc::Md5KeyOp op, bool answers_lookup,
                uint32_t ttl_seconds, uint32_t device_id, const std::string& key);

  bool enabled_;
  ControlClient* control_;
  Hooks hooks_;
  struct Asked {
    Endpoint device;
    Endpoint local;
    int64_t deadline_ns = 0;
  };
  std::unordered_map<std::string, Asked> asked_;  // by device address text
  std::unordered_set<std::string> keyed_;         // addresses we sent a key for
};

}  // namespace kbgp::uplink
