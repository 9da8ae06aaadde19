// The systemd notification protocol (sd_notify(3)) without libsystemd: one
// datagram to $NOTIFY_SOCKET. A no-op when not started by systemd.
#pragma once

#include <cstdint>
#include <string>

namespace kbgp {

class SystemdNotifier {
 public:
  SystemdNotifier();  // reads and unsets NOTIFY_SOCKET, WATCHDOG_USEC
  bool enabled() const { return !socket_path_.empty(); }
  // The watchdog interval systemd asked for, 0 when none.
  int64_t watchdog_interval_ns() const { return watchdog_ns_; }
  void notify(const std::string& state) const;

 private:
  std::string socket_path_;
  int64_t watchdog_ns_ = 0;
};

}  // namespace kbgp
