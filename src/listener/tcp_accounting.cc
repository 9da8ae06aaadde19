#include "listener/tcp_accounting.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace kbgp::listener {

namespace {

// The start of the kernel's struct tcp_info (linux/tcp.h) up to
// tcpi_bytes_received. glibc's <netinet/tcp.h> stops before the byte
// counters, and <linux/tcp.h> clashes with it; the ABI is stable.
struct TcpInfoPrefix {
  uint8_t state;
  uint8_t ca_state, retransmits, probes, backoff, options, wscale, flags;
  uint32_t rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets;
  uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
  uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
  uint32_t rcv_rtt, rcv_space, total_retrans;
  uint64_t pacing_rate, max_pacing_rate;
  uint64_t bytes_acked;     // RFC 4898 tcpEStatsAppHCThruOctetsAcked
  uint64_t bytes_received;  // RFC 4898 tcpEStatsAppHCThruOctetsReceived
};
static_assert(offsetof(TcpInfoPrefix, bytes_acked) == 120);
static_assert(offsetof(TcpInfoPrefix, bytes_received) == 128);

// linux/tcp_states.h
enum : uint8_t {
  kEstablished = 1, kFinWait1 = 4, kFinWait2 = 5, kTimeWait = 6, kClose = 7,
  kCloseWait = 8, kLastAck = 9, kClosing = 11,
};

bool queue(int fd, unsigned long request, int* out) { return ::ioctl(fd, request, out) == 0; }

}  // namespace

std::optional<TcpAccounting> tcp_accounting(int fd, std::string* error) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    int inq_before = 0, outq_before = 0, inq_after = 0, outq_after = 0;
    TcpInfoPrefix info{};
    socklen_t len = sizeof info;
    if (!queue(fd, SIOCINQ, &inq_before) || !queue(fd, SIOCOUTQ, &outq_before) ||
        ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        !queue(fd, SIOCINQ, &inq_after) || !queue(fd, SIOCOUTQ, &outq_after)) {
      *error = std::strerror(errno);
      return std::nullopt;
    }
    if (len < sizeof info) {
      *error = "TCP_INFO without byte counters (kernel older than 4.1)";
      return std::nullopt;
    }
    if (inq_before != inq_after || outq_before != outq_after) continue;  // moved: again
    TcpAccounting a;
    a.fin_received = info.state == kCloseWait || info.state == kLastAck ||
                     info.state == kClosing || info.state == kTimeWait;
    a.fin_sent = info.state == kFinWait1 || info.state == kFinWait2 ||
                 info.state == kClosing || info.state == kLastAck || info.state == kTimeWait;
    a.closed = info.state == kClose;
    uint64_t data_received = info.bytes_received - (a.fin_received ? 1 : 0);
    a.read = data_received - static_cast<uint64_t>(inq_after);
    a.written = info.bytes_acked + static_cast<uint64_t>(outq_after);
    if (a.fin_sent && a.written > 0) --a.written;  // our FIN counts there too
    return a;
  }
  *error = "the socket's queues kept changing";
  return std::nullopt;
}

}  // namespace kbgp::listener
