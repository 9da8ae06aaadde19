// libFuzzer target: the supervisor's SYN header parser (the only network
// input it parses beyond accept) must never crash or read out of bounds,
// and its BPF filter must never drop a signed SYN the parser accepts.
// Input: one byte choosing the family (odd: IPv6), then the packet from its
// IP header, as a cooked AF_PACKET socket delivers it.
#include <linux/if_packet.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../unit/cbpf_interpreter.h"
#include "supervisor/syn_capture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint16_t ethertype = (data[0] & 1) ? 0x86DD : 0x0800;
  // An exact-size copy: AddressSanitizer flags any read past the packet.
  std::vector<uint8_t> packet(data + 1, data + size);
  kbgp::SynHeaders headers;
  auto result =
      kbgp::parse_syn(packet.empty() ? nullptr : packet.data(), packet.size(), ethertype, &headers);
  static const std::vector<sock_filter> filter = kbgp::syn_filter({179});
  uint32_t kept =
      kbgp::testing::run_cbpf(filter, packet.data(), packet.size(), {PACKET_HOST, ethertype});
  if (result == kbgp::SynParse::Ok && headers.md5 && headers.destination.port == 179 && kept == 0)
    __builtin_trap();  // the filter would hide a SYN the supervisor must see
  return 0;
}
