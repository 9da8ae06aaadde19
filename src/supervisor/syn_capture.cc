#include "supervisor/syn_capture.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kbgp {

namespace {

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86DD;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kTcpSyn = 0x02, kTcpRst = 0x04, kTcpAck = 0x10;
constexpr size_t kMaxFilterPorts = 32;
// Every option takes at least one byte of the at most 40 option bytes.
constexpr int kMaxOptionSteps = 40;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Walks the TCP options in [p, end): true when kind 19 is among them. A
// malformed list (a length below 2 or past the end) ends the walk with false.
bool has_md5_option(const uint8_t* p, const uint8_t* end) {
  while (p < end) {
    uint8_t kind = p[0];
    if (kind == 0) return false;  // end of option list
    if (kind == 1) {              // no-operation
      ++p;
      continue;
    }
    if (end - p < 2) return false;
    uint8_t length = p[1];
    if (length < 2 || length > end - p) return false;
    if (kind == kTcpOptionMd5) return true;
    p += length;
  }
  return false;
}

bool bad_ipv4_source(const uint8_t* a) {
  uint32_t v = static_cast<uint32_t>(a[0]) << 24 | a[1] << 16 | a[2] << 8 | a[3];
  return v == 0 || (a[0] & 0xf0) == 0xe0 || v == 0xffffffffu;
}

bool bad_ipv6_source(const uint8_t* a) {
  static const uint8_t kZero[16] = {};
  return std::memcmp(a, kZero, 16) == 0 || a[0] == 0xff;
}

// A tiny assembler for classic BPF with forward labels, so the unrolled
// option walk below stays readable. Conditional jumps are 8-bit relative;
// every target here is within a few instructions.
class Assembler {
 public:
  int label() {
    targets_.push_back(-1);
    return static_cast<int>(targets_.size()) - 1;
  }
  void bind(int l) { targets_[l] = static_cast<int>(code_.size()); }
  void stmt(uint16_t code, uint32_t k) { code_.push_back({{code, 0, 0, k}, kNext, kNext}); }
  // Jumps to `jt` when the condition holds, else to `jf` (kNext = fall through).
  void jump(uint16_t code, uint32_t k, int jt, int jf) {
    code_.push_back({{code, 0, 0, k}, jt, jf});
  }
  void ja(int target) { code_.push_back({{BPF_JMP | BPF_JA, 0, 0, 0}, target, kNext}); }

  // The program, or an empty one when a conditional jump does not fit in
  // its 8 bits (a bug here, caught by the unit tests).
  std::vector<sock_filter> finish() const {
    std::vector<sock_filter> out;
    for (size_t i = 0; i < code_.size(); ++i) {
      sock_filter f = code_[i].insn;
      auto offset = [&](int l) {
        return l == kNext ? 0 : targets_[l] - static_cast<int>(i) - 1;
      };
      if (BPF_CLASS(f.code) == BPF_JMP) {
        if (BPF_OP(f.code) == BPF_JA) {
          f.k = static_cast<uint32_t>(offset(code_[i].jt));
        } else {
          int jt = offset(code_[i].jt), jf = offset(code_[i].jf);
          if (jt < 0 || jt > 255 || jf < 0 || jf > 255) return {};
          f.jt = static_cast<uint8_t>(jt);
          f.jf = static_cast<uint8_t>(jf);
        }
      }
      out.push_back(f);
    }
    return out;
  }

  static constexpr int kNext = -1;

 private:
  struct Item {
    sock_filter insn;
    int jt, jf;
  };
  std::vector<Item> code_;
  std::vector<int> targets_;
};

}  // namespace

SynParse parse_syn(const uint8_t* data, size_t len, uint16_t ethertype, SynHeaders* out) {
  if (!data || len == 0) return SynParse::Malformed;
  SynHeaders h;
  size_t tcp = 0;  // offset of the TCP header
  size_t end = 0;  // end of the IP packet within what was captured
  if (ethertype == kEthIpv4) {
    if (len < 20 || (data[0] >> 4) != 4) return SynParse::Malformed;
    size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
    size_t total = be16(data + 2);
    if (ihl < 20 || ihl > len || total < ihl) return SynParse::Malformed;
    if (data[9] != kProtoTcp) return SynParse::NotTcp;
    if (be16(data + 6) & 0x3fff) return SynParse::NotTcp;  // a fragment (MF or offset)
    if (bad_ipv4_source(data + 12)) return SynParse::BadSource;
    h.source.family = h.destination.family = AF_INET;
    std::memcpy(h.source.addr, data + 12, 4);
    std::memcpy(h.destination.addr, data + 16, 4);
    tcp = ihl;
    end = std::min(total, len);
  } else if (ethertype == kEthIpv6) {
    if (len < 40 || (data[0] >> 4) != 6) return SynParse::Malformed;
    // Extension headers are not followed: a SYN with any is not ours.
    if (data[6] != kProtoTcp) return SynParse::NotTcp;
    if (bad_ipv6_source(data + 8)) return SynParse::BadSource;
    h.source.family = h.destination.family = AF_INET6;
    std::memcpy(h.source.addr, data + 8, 16);
    std::memcpy(h.destination.addr, data + 24, 16);
    tcp = 40;
    end = std::min<size_t>(40 + be16(data + 4), len);
  } else {
    return SynParse::UnknownFamily;
  }
  if (end < tcp + 20) return SynParse::Malformed;
  const uint8_t* t = data + tcp;
  size_t doff = static_cast<size_t>(t[12] >> 4) * 4;
  if (doff < 20 || tcp + doff > end) return SynParse::Malformed;
  uint8_t flags = t[13];
  if ((flags & (kTcpSyn | kTcpAck | kTcpRst)) != kTcpSyn) return SynParse::NotSyn;
  h.source.port = be16(t);
  h.destination.port = be16(t + 2);
  h.md5 = has_md5_option(t + 20, t + doff);
  *out = h;
  return SynParse::Ok;
}

const char* syn_parse_name(SynParse result) {
  switch (result) {
    case SynParse::Ok: return "ok";
    case SynParse::Malformed: return "malformed";
    case SynParse::NotTcp: return "not-tcp";
    case SynParse::NotSyn: return "not-syn";
    case SynParse::BadSource: return "bad-source";
    case SynParse::UnknownFamily: return "unknown-family";
  }
  return "unknown";
}

std::vector<sock_filter> syn_filter(const std::vector<uint16_t>& wanted) {
  std::vector<uint16_t> ports(wanted);
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  if (ports.size() > kMaxFilterPorts) ports.resize(kMaxFilterPorts);

  Assembler a;
  const int drop = a.label(), v4 = a.label(), v6 = a.label(), tcp = a.label(),
            port_ok = a.label(), walk = a.label();
  constexpr int next = Assembler::kNext;
  // On lo every packet passes twice; only the inbound copy counts.
  a.stmt(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE));
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, drop, next);
  a.stmt(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL));
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, kEthIpv4, v4, next);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, kEthIpv6, v6, drop);

  // IPv4: version 4, TCP, not a fragment; X = header length.
  a.bind(v4);
  a.stmt(BPF_LD | BPF_B | BPF_ABS, 0);
  a.stmt(BPF_ALU | BPF_AND | BPF_K, 0xf0);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0x40, next, drop);
  a.stmt(BPF_LD | BPF_B | BPF_ABS, 9);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, kProtoTcp, next, drop);
  a.stmt(BPF_LD | BPF_H | BPF_ABS, 6);
  a.jump(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, drop, next);
  a.stmt(BPF_LDX | BPF_B | BPF_MSH, 0);
  a.ja(tcp);

  // IPv6: version 6, next header TCP (no extension headers); X = 40.
  a.bind(v6);
  a.stmt(BPF_LD | BPF_B | BPF_ABS, 0);
  a.stmt(BPF_ALU | BPF_AND | BPF_K, 0xf0);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0x60, next, drop);
  a.stmt(BPF_LD | BPF_B | BPF_ABS, 6);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, kProtoTcp, next, drop);
  a.stmt(BPF_LDX | BPF_W | BPF_IMM, 40);

  // TCP, X = its offset: one of our ports, SYN without ACK/RST, data offset
  // at least 5 words; M[0] = end of the TCP header.
  a.bind(tcp);
  a.stmt(BPF_LD | BPF_H | BPF_IND, 2);
  for (uint16_t p : ports) a.jump(BPF_JMP | BPF_JEQ | BPF_K, p, port_ok, next);
  a.ja(drop);
  a.bind(port_ok);
  a.stmt(BPF_LD | BPF_B | BPF_IND, 13);
  a.stmt(BPF_ALU | BPF_AND | BPF_K, kTcpSyn | kTcpAck | kTcpRst);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, kTcpSyn, next, drop);
  a.stmt(BPF_LD | BPF_B | BPF_IND, 12);
  a.stmt(BPF_ALU | BPF_AND | BPF_K, 0xf0);
  a.stmt(BPF_ALU | BPF_RSH | BPF_K, 2);  // data offset in bytes
  a.jump(BPF_JMP | BPF_JGE | BPF_K, 20, next, drop);
  a.ja(walk);
  a.bind(drop);  // within reach of the 8-bit jumps above
  a.stmt(BPF_RET | BPF_K, 0);

  // M[0] is stored only after the early drop: the kernel's checker lets a
  // RET fall through into the next instruction when it tracks which
  // scratch words are set, so a load of M[0] right after it is refused.
  a.bind(walk);
  a.stmt(BPF_LD | BPF_B | BPF_IND, 12);
  a.stmt(BPF_ALU | BPF_AND | BPF_K, 0xf0);
  a.stmt(BPF_ALU | BPF_RSH | BPF_K, 2);
  a.stmt(BPF_ALU | BPF_ADD | BPF_X, 0);
  a.stmt(BPF_ST, 0);                     // M[0] = end of the TCP header
  a.stmt(BPF_MISC | BPF_TXA, 0);
  a.stmt(BPF_ALU | BPF_ADD | BPF_K, 20);
  a.stmt(BPF_MISC | BPF_TAX, 0);         // X = first option byte

  // The option walk, unrolled (classic BPF has no loops): X = the current
  // option's offset. Each step: past the end -> drop; kind 19 -> accept;
  // kind 0 -> drop; kind 1 -> X + 1; else X + length (length >= 2, within
  // the header). Each step has its own returns, so every jump stays short.
  for (int step = 0; step < kMaxOptionSteps; ++step) {
    const int nop = a.label(), next_step = a.label(), step_drop = a.label(),
              step_accept = a.label();
    a.stmt(BPF_LD | BPF_MEM, 0);
    a.jump(BPF_JMP | BPF_JGT | BPF_X, 0, next, step_drop);  // end > X
    a.stmt(BPF_LD | BPF_B | BPF_IND, 0);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, kTcpOptionMd5, step_accept, next);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0, step_drop, next);
    a.jump(BPF_JMP | BPF_JEQ | BPF_K, 1, nop, next);
    a.stmt(BPF_LD | BPF_MEM, 0);
    a.stmt(BPF_ALU | BPF_SUB | BPF_K, 1);
    a.jump(BPF_JMP | BPF_JGT | BPF_X, 0, next, step_drop);  // end - 1 > X: a length byte
    a.stmt(BPF_LD | BPF_B | BPF_IND, 1);
    a.jump(BPF_JMP | BPF_JGE | BPF_K, 2, next, step_drop);
    a.stmt(BPF_ALU | BPF_ADD | BPF_X, 0);
    a.stmt(BPF_MISC | BPF_TAX, 0);
    a.ja(next_step);
    a.bind(nop);
    a.stmt(BPF_MISC | BPF_TXA, 0);
    a.stmt(BPF_ALU | BPF_ADD | BPF_K, 1);
    a.stmt(BPF_MISC | BPF_TAX, 0);
    a.ja(next_step);
    a.bind(step_drop);
    a.stmt(BPF_RET | BPF_K, 0);
    a.bind(step_accept);
    a.stmt(BPF_RET | BPF_K, kSynSnapLength);
    a.bind(next_step);
  }
  a.stmt(BPF_RET | BPF_K, 0);  // more than 40 options: not a real SYN
  return a.finish();
}

std::optional<SynCapture> SynCapture::open(const std::string& interface,
                                           const std::vector<uint16_t>& ports,
                                           std::string* error, bool* no_interface) {
  unsigned ifindex = 0;
  if (interface != "any") {
    ifindex = ::if_nametoindex(interface.c_str());
    if (ifindex == 0) {
      if (no_interface) *no_interface = true;
      *error = "no network interface \"" + interface + "\" (--md5-listen-interface; \"any\" "
               "captures on all)";
      return std::nullopt;
    }
  }
  SynCapture c;
  c.interface_ = interface;
  // Protocol 0 receives nothing until bind(): the filter is in place before
  // the first packet can queue up unfiltered.
  c.fd_ = UniqueFd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!c.fd_) {
    *error = std::string("cannot open the packet socket for SYN capture: ") +
             std::strerror(errno) + (errno == EPERM ? " (needs CAP_NET_RAW)" : "");
    return std::nullopt;
  }
  std::vector<sock_filter> program = syn_filter(ports);
  if (program.empty()) {
    *error = "cannot build the SYN filter";
    return std::nullopt;
  }
  sock_fprog prog{static_cast<unsigned short>(program.size()), program.data()};
  if (::setsockopt(c.fd_.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
    *error = std::string("cannot attach the SYN filter: ") + std::strerror(errno);
    return std::nullopt;
  }
  int lock = 1;  // nobody replaces the filter later
  ::setsockopt(c.fd_.get(), SOL_SOCKET, SO_LOCK_FILTER, &lock, sizeof lock);
  int rcvbuf = 1 << 20;
  ::setsockopt(c.fd_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_ll where{};
  where.sll_family = AF_PACKET;
  where.sll_protocol = htons(ETH_P_ALL);
  where.sll_ifindex = static_cast<int>(ifindex);
  if (::bind(c.fd_.get(), reinterpret_cast<sockaddr*>(&where), sizeof where) != 0) {
    *error = "cannot bind the SYN capture to interface " + interface + ": " +
             std::strerror(errno);
    return std::nullopt;
  }
  return c;
}

SynCapture::Read SynCapture::read_one(SynHeaders* out) {
  uint8_t buf[kSynSnapLength];
  sockaddr_ll from{};
  socklen_t from_len = sizeof from;
  ssize_t n;
  do {
    n = ::recvfrom(fd_.get(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                   &from_len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? Read::Empty : Read::Failed;
  if (from.sll_pkttype == PACKET_OUTGOING) return Read::Ignored;
  SynHeaders h;
  if (parse_syn(buf, static_cast<size_t>(n), ntohs(from.sll_protocol), &h) != SynParse::Ok ||
      !h.md5)
    return Read::Ignored;
  *out = h;
  return Read::Syn;
}

uint64_t SynCapture::take_kernel_drops() {
  tpacket_stats stats{};
  socklen_t len = sizeof stats;
  if (::getsockopt(fd_.get(), SOL_PACKET, PACKET_STATISTICS, &stats, &len) != 0) return 0;
  return stats.tp_drops;
}

}  // namespace kbgp
