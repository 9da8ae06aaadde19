// Seeing TCP-MD5 signed SYNs before the kernel drops them (--enable-md5-support).
//
// A SYN signed with a key the listening socket does not hold is dropped
// silently: no request socket, nothing to accept. The only way to notice the
// device is to capture its SYN. The supervisor opens an AF_PACKET socket
// (CAP_NET_RAW) in cooked mode (SOCK_DGRAM: packets start at the IP header,
// on every interface type, `any` included) with a classic BPF filter that
// passes only inbound IPv4/IPv6 TCP SYNs without ACK or RST to one of our
// listening ports that carry the TCP-MD5 option (kind 19). The filter is an
// optimisation; parse_syn() is the authority and checks every byte it reads.
//
// This is the only network input the supervisor parses beyond accept():
// IP and TCP headers, nothing after them.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/endpoint.h"
#include "common/fd.h"

namespace kbgp {

// TCP option kind of RFC 2385's MD5 signature.
constexpr uint8_t kTcpOptionMd5 = 19;

struct SynHeaders {
  Endpoint source;       // the device: address and port of the SYN
  Endpoint destination;  // ours: address and port it was sent to
  bool md5 = false;      // carries the TCP-MD5 option
};

enum class SynParse {
  Ok,
  Malformed,    // truncated or inconsistent IP/TCP header
  NotTcp,       // another protocol, an IPv6 extension header, or a fragment
  NotSyn,       // not a SYN, or a SYN with ACK or RST
  BadSource,    // unspecified, multicast or broadcast source address
  UnknownFamily,
};

// Parses one captured packet that starts at its IP header. `ethertype` is
// the link-layer protocol in host order (sll_protocol): 0x0800 or 0x86DD;
// the IP version nibble must agree with it. Reads nothing at or beyond
// data + len. Out is only filled on Ok.
SynParse parse_syn(const uint8_t* data, size_t len, uint16_t ethertype, SynHeaders* out);
const char* syn_parse_name(SynParse result);

// How many bytes of each packet the filter keeps: the largest IPv4 header
// (60) plus the largest TCP header (60), with room to spare.
constexpr uint32_t kSynSnapLength = 192;

// The classic BPF program described above, for these destination ports
// (at most 32 distinct ones; an empty list passes nothing).
std::vector<sock_filter> syn_filter(const std::vector<uint16_t>& ports);

// The capture socket.
class SynCapture {
 public:
  struct Stats {
    uint64_t signed_syns = 0;  // parsed Ok with the MD5 option
    uint64_t ignored = 0;      // anything else the filter let through
  };

  // Opens the socket on `interface` ("any" = every interface) for `ports`.
  // nullopt with `error` when the interface does not exist (then
  // `no_interface` is set, if given) or the socket cannot be opened (EPERM
  // without CAP_NET_RAW).
  static std::optional<SynCapture> open(const std::string& interface,
                                        const std::vector<uint16_t>& ports, std::string* error,
                                        bool* no_interface = nullptr);

  int fd() const { return fd_.get(); }
  const std::string& interface() const { return interface_; }

  // Reads at most `max_packets` waiting packets and calls fn(headers) for
  // each signed SYN. Returns false when the socket failed (errno set); it
  // should then be closed and opened again later.
  template <typename Fn>
  bool drain(size_t max_packets, Stats* stats, Fn&& fn) {
    SynHeaders headers;
    for (size_t i = 0; i < max_packets; ++i) {
      switch (read_one(&headers)) {
        case Read::Empty: return true;
        case Read::Failed: return false;
        case Read::Ignored: ++stats->ignored; break;
        case Read::Syn:
          ++stats->signed_syns;
          fn(static_cast<const SynHeaders&>(headers));
          break;
      }
    }
    return true;
  }

  // Packets the kernel dropped because the socket's buffer was full, since
  // the last call (PACKET_STATISTICS resets on read).
  uint64_t take_kernel_drops();

 private:
  enum class Read { Empty, Failed, Ignored, Syn };
  Read read_one(SynHeaders* out);

  UniqueFd fd_;
  std::string interface_;
};

}  // namespace kbgp
