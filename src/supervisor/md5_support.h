// TCP-MD5 in the supervisor (--enable-md5-support): the keys in force on the
// listening sockets (Md5KeyTable), the SYN capture (SynCapture) and the
// lookup policy (Md5LookupPolicy), tied to the uplink's InstallMd5Key
// messages and the supervisor's Md5Lookup requests; the kernel's MD5
// counters; and the log lines that say why a device does not connect.
// Everything runs on the supervisor's event thread. No key byte is logged
// or written to shared memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/endpoint.h"
#include "common/fd.h"
#include "common/ipc.h"
#include "common/layout.h"
#include "supervisor/md5_keys.h"
#include "supervisor/md5_lookups.h"
#include "supervisor/syn_capture.h"

namespace kbgp {

// The kernel's names are from the receiver's side: NotFound = a key is set
// for the peer but its segment carries no signature; Unexpected = the
// segment is signed but no key is set for the peer (a device whose key the
// agent does not have yet); Failure = signed with another key.
struct KernelMd5Counters {
  uint64_t not_found = 0;   // TcpExtTCPMD5NotFound
  uint64_t unexpected = 0;  // TcpExtTCPMD5Unexpected
  uint64_t failure = 0;     // TcpExtTCPMD5Failure
};
// Reads the three counters from the text of /proc/net/netstat (a "TcpExt:"
// line of names followed by one of values). False when they are missing.
bool parse_kernel_md5_counters(std::string_view netstat, KernelMd5Counters* out);

class Md5Support {
 public:
  struct Hooks {
    // Sends Md5Lookup to the uplink; false when it cannot (not running).
    std::function<bool(const Endpoint& device, const Endpoint& local)> send_lookup;
    // True while `device` is deny-listed: its SYNs are not looked up.
    std::function<bool(const Endpoint& device)> denied;
  };
  // Keys are kept at least this long when the answer allows no caching
  // (ttl_seconds 0): long enough for the SYN retry that asked for it.
  static constexpr uint32_t kUncachedKeySeconds = 30;
  static constexpr size_t kPacketsPerWake = 256;

  // In setup(), as root before the privilege drop: describes the listening
  // sockets, opens the capture on `interface` and /proc/net/netstat. An
  // unknown interface is an error; a capture that cannot be opened for lack
  // of privilege is only a warning (pushed keys still work).
  static std::unique_ptr<Md5Support> create(const std::string& interface,
                                            const std::vector<int>& listen_fds,
                                            shm::GlobalCounters* counters, Hooks hooks,
                                            std::string* error);

  // The capture socket, -1 while there is none.
  int capture_fd() const { return capture_ ? capture_->fd() : -1; }
  void on_capture_readable(int64_t now_mono_ns);
  void on_key_message(const ipc::InstallMd5Key& msg, int64_t now_mono_ns);
  // A connection from `device` was accepted: true when a key is installed
  // for it (the session is MD5-protected).
  bool on_accept(const Endpoint& device);
  // Once a second: expiries, lookup timeouts, kernel counters, warnings, a
  // capture to reopen. True when capture_fd() changed.
  bool tick(int64_t now_mono_ns);

  const Md5KeyTable& keys() const { return keys_; }

 private:
  Md5Support(std::vector<Md5Listener> listeners, shm::GlobalCounters* counters, Hooks hooks,
             size_t optmem_max, int64_t now);
  void on_syn(const SynHeaders& syn, int64_t now);
  bool to_our_listener(const Endpoint& destination) const;
  void install(const ipc::InstallMd5Key& msg, const Endpoint& device, int64_t now);
  void remove(const Endpoint& device, const char* why, const ipc::InstallMd5Key& msg);
  void read_kernel_counters(int64_t now);
  void publish_gauges();

  std::vector<Md5Listener> listeners_;
  shm::GlobalCounters* counters_;
  Hooks hooks_;
  Md5KeyTable keys_;
  Md5LookupPolicy policy_;
  std::optional<SynCapture> capture_;
  std::string interface_;
  std::vector<uint16_t> ports_;
  int64_t reopen_at_ns_ = 0;
  UniqueFd netstat_;
  bool kernel_seen_ = false;
  KernelMd5Counters kernel_last_;      // at the last log line
  int64_t kernel_logged_ns_ = 0;
  uint64_t unanswered_unlogged_ = 0;
  int64_t unanswered_logged_ns_ = 0;
  // A flood of forged SYNs must not flood the log: at most
  // kLookupLinesPerSecond lookup lines, the rest counted in one line a tick.
  static constexpr uint32_t kLookupLinesPerSecond = 20;
  int64_t lookup_log_window_ns_ = 0;
  uint32_t lookup_lines_in_window_ = 0;
  uint64_t lookups_unlogged_ = 0;
};

}  // namespace kbgp
