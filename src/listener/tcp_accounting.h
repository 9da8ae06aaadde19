// The kernel's own count of what the listener read from and wrote to a
// device socket, for reconciling after a restart: a listener can be killed
// between a read()/send() and the store that records it in the session
// region, and only the kernel knows which side of that line it died on.
//
//   read    = TCP_INFO tcpi_bytes_received (minus 1 once a FIN arrived: the
//             FIN counts there) - SIOCINQ (received, not yet read)
//   written = TCP_INFO tcpi_bytes_acked + SIOCOUTQ (written, not yet acked)
//
// Neither sum can be read atomically. Nobody reads or writes the socket
// meanwhile, so SIOCINQ only grows and SIOCOUTQ only shrinks while the TCP
// counters move with them; reading the queue before and after TCP_INFO and
// retrying until both agree gives a consistent snapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kbgp::listener {

struct TcpAccounting {
  uint64_t read = 0;     // bytes the application has taken from the socket
  uint64_t written = 0;  // bytes the application has handed to the socket
  bool fin_received = false;  // the device closed its side
  bool fin_sent = false;      // our side was shut down (we sent a FIN)
  bool closed = false;        // the connection is gone (reset or fully closed)
};

// nullopt (with `error`) when the kernel does not tell.
std::optional<TcpAccounting> tcp_accounting(int fd, std::string* error);

}  // namespace kbgp::listener
