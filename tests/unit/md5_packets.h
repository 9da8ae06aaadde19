// Building captured TCP SYNs (starting at the IP header) for the SYN parser
// and filter tests and the fuzzer's seeds.
#pragma once

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

namespace kbgp::testing {

// Options as Linux sends them with a key: NOP NOP MD5(18), then MSS.
inline std::vector<uint8_t> linux_md5_options() {
  static const uint8_t kOptions[] = {1, 1, 19, 18, 0, 1, 2, 3, 4, 5, 6, 7,
                                     8, 9, 10, 11, 12, 13, 14, 15, 2, 4, 0x05, 0xb4};
  return std::vector<uint8_t>(std::begin(kOptions), std::end(kOptions));
}

struct SynSpec {
  bool ipv6 = false;
  uint8_t src[16] = {127, 0, 0, 3};
  uint8_t dst[16] = {127, 0, 0, 1};
  uint16_t sport = 40000;
  uint16_t dport = 179;
  uint8_t flags = 0x02;  // SYN
  std::vector<uint8_t> options = linux_md5_options();
};

inline std::vector<uint8_t> build_syn(const SynSpec& s) {
  std::vector<uint8_t> opts = s.options;
  while (opts.size() % 4) opts.push_back(0);  // pad with end-of-list
  std::vector<uint8_t> tcp(20 + opts.size(), 0);
  tcp[0] = static_cast<uint8_t>(s.sport >> 8);
  tcp[1] = static_cast<uint8_t>(s.sport);
  tcp[2] = static_cast<uint8_t>(s.dport >> 8);
  tcp[3] = static_cast<uint8_t>(s.dport);
  tcp[12] = static_cast<uint8_t>((tcp.size() / 4) << 4);
  tcp[13] = s.flags;
  tcp[14] = 0xff;  // window
  for (size_t i = 0; i < opts.size(); ++i) tcp[20 + i] = opts[i];
  std::vector<uint8_t> ip;
  if (!s.ipv6) {
    ip.assign(20, 0);
    ip[0] = 0x45;
    size_t total = 20 + tcp.size();
    ip[2] = static_cast<uint8_t>(total >> 8);
    ip[3] = static_cast<uint8_t>(total);
    ip[6] = 0x40;  // don't fragment
    ip[8] = 64;
    ip[9] = 6;
    for (int i = 0; i < 4; ++i) ip[12 + i] = s.src[i], ip[16 + i] = s.dst[i];
  } else {
    ip.assign(40, 0);
    ip[0] = 0x60;
    ip[4] = static_cast<uint8_t>(tcp.size() >> 8);
    ip[5] = static_cast<uint8_t>(tcp.size());
    ip[6] = 6;
    ip[7] = 64;
    for (int i = 0; i < 16; ++i) ip[8 + i] = s.src[i], ip[24 + i] = s.dst[i];
  }
  ip.insert(ip.end(), tcp.begin(), tcp.end());
  return ip;
}

inline SynSpec syn_v6() {
  SynSpec s;
  s.ipv6 = true;
  uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
  for (int i = 0; i < 16; ++i) s.dst[i] = one[i], s.src[i] = src[i];
  return s;
}

}  // namespace kbgp::testing
