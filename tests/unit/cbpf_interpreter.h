// A classic BPF interpreter with the kernel's socket-filter semantics, for
// testing the supervisor's SYN filter without a packet socket: unsigned
// 32-bit A and X, 16 scratch words, an out-of-bounds packet load ends the
// program with 0 (drop), ancillary loads for the packet type and protocol.
// Shared by the unit tests and the SYN fuzzer.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kbgp::testing {

struct PacketMeta {
  uint32_t pkttype = 0;   // PACKET_HOST, PACKET_OUTGOING, ...
  uint16_t protocol = 0;  // ethertype, host order
};

// The kernel's checks of a classic program at SO_ATTACH_FILTER
// (bpf_check_classic, check_load_and_stores in net/core/filter.c): jumps
// inside the program, a RET last, scratch words stored before they are
// loaded on every path -- where the kernel lets a RET "fall through" into
// the next instruction.
inline bool kernel_accepts(const std::vector<sock_filter>& prog) {
  size_t n = prog.size();
  if (n == 0 || n > BPF_MAXINSNS) return false;
  for (size_t pc = 0; pc < n; ++pc) {
    const sock_filter& f = prog[pc];
    if (BPF_CLASS(f.code) == BPF_JMP) {
      if (BPF_OP(f.code) == BPF_JA) {
        if (f.k >= n - pc - 1) return false;
      } else if (pc + f.jt + 1 >= n || pc + f.jf + 1 >= n) {
        return false;
      }
    }
    bool mem = (BPF_CLASS(f.code) == BPF_LD || BPF_CLASS(f.code) == BPF_LDX)
                   ? BPF_MODE(f.code) == BPF_MEM
                   : BPF_CLASS(f.code) == BPF_ST || BPF_CLASS(f.code) == BPF_STX;
    if (mem && f.k >= BPF_MEMWORDS) return false;
  }
  if (BPF_CLASS(prog[n - 1].code) != BPF_RET) return false;
  std::vector<uint16_t> masks(n, 0xffff);
  uint16_t valid = 0;
  for (size_t pc = 0; pc < n; ++pc) {
    const sock_filter& f = prog[pc];
    valid &= masks[pc];
    switch (BPF_CLASS(f.code)) {
      case BPF_ST:
      case BPF_STX: valid |= static_cast<uint16_t>(1u << f.k); break;
      case BPF_LD:
      case BPF_LDX:
        if (BPF_MODE(f.code) == BPF_MEM && !(valid & (1u << f.k))) return false;
        break;
      case BPF_JMP:
        if (BPF_OP(f.code) == BPF_JA) {
          masks[pc + 1 + f.k] &= valid;
        } else {
          masks[pc + 1 + f.jt] &= valid;
          masks[pc + 1 + f.jf] &= valid;
        }
        valid = 0xffff;
        break;
      default: break;
    }
  }
  return true;
}

// The program's return value (bytes to keep; 0 = drop). Also 0 for an
// invalid instruction or a jump out of the program.
inline uint32_t run_cbpf(const std::vector<sock_filter>& prog, const uint8_t* pkt, size_t len,
                         const PacketMeta& meta) {
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};
  auto load = [&](uint64_t off, int size, uint32_t* out) {
    if (off + static_cast<uint64_t>(size) > len) return false;
    uint32_t v = 0;
    for (int i = 0; i < size; ++i) v = v << 8 | pkt[off + static_cast<size_t>(i)];
    *out = v;
    return true;
  };
  auto ancillary = [&](uint32_t k, uint32_t* out) {
    if (k == static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE)) *out = meta.pkttype;
    else if (k == static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL)) *out = meta.protocol;
    else return false;
    return true;
  };
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& f = prog[pc];
    int size = BPF_SIZE(f.code) == BPF_W ? 4 : BPF_SIZE(f.code) == BPF_H ? 2 : 1;
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        switch (BPF_MODE(f.code)) {
          case BPF_ABS:
            if (f.k >= static_cast<uint32_t>(SKF_AD_OFF)) {
              if (!ancillary(f.k, &a)) return 0;
            } else if (!load(f.k, size, &a)) {
              return 0;
            }
            break;
          case BPF_IND:
            if (!load(uint64_t{x} + f.k, size, &a)) return 0;
            break;
          case BPF_IMM: a = f.k; break;
          case BPF_MEM:
            if (f.k >= BPF_MEMWORDS) return 0;
            a = mem[f.k];
            break;
          case BPF_LEN: a = static_cast<uint32_t>(len); break;
          default: return 0;
        }
        break;
      case BPF_LDX:
        switch (BPF_MODE(f.code)) {
          case BPF_IMM: x = f.k; break;
          case BPF_MEM:
            if (f.k >= BPF_MEMWORDS) return 0;
            x = mem[f.k];
            break;
          case BPF_LEN: x = static_cast<uint32_t>(len); break;
          case BPF_MSH: {
            uint32_t b;
            if (!load(f.k, 1, &b)) return 0;
            x = (b & 0xf) * 4;
            break;
          }
          default: return 0;
        }
        break;
      case BPF_ST:
        if (f.k >= BPF_MEMWORDS) return 0;
        mem[f.k] = a;
        break;
      case BPF_STX:
        if (f.k >= BPF_MEMWORDS) return 0;
        mem[f.k] = x;
        break;
      case BPF_ALU: {
        uint32_t v = BPF_SRC(f.code) == BPF_X ? x : f.k;
        switch (BPF_OP(f.code)) {
          case BPF_ADD: a += v; break;
          case BPF_SUB: a -= v; break;
          case BPF_MUL: a *= v; break;
          case BPF_DIV:
            if (!v) return 0;
            a /= v;
            break;
          case BPF_MOD:
            if (!v) return 0;
            a %= v;
            break;
          case BPF_OR: a |= v; break;
          case BPF_AND: a &= v; break;
          case BPF_XOR: a ^= v; break;
          case BPF_LSH: a = v < 32 ? a << v : 0; break;
          case BPF_RSH: a = v < 32 ? a >> v : 0; break;
          case BPF_NEG: a = 0u - a; break;
          default: return 0;
        }
        break;
      }
      case BPF_JMP: {
        if (BPF_OP(f.code) == BPF_JA) {
          pc += f.k;
          break;
        }
        uint32_t v = BPF_SRC(f.code) == BPF_X ? x : f.k;
        bool cond;
        switch (BPF_OP(f.code)) {
          case BPF_JEQ: cond = a == v; break;
          case BPF_JGT: cond = a > v; break;
          case BPF_JGE: cond = a >= v; break;
          case BPF_JSET: cond = (a & v) != 0; break;
          default: return 0;
        }
        pc += cond ? f.jt : f.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_A ? a : f.k;
      case BPF_MISC:
        if (BPF_MISCOP(f.code) == BPF_TAX) x = a;
        else a = x;
        break;
      default:
        return 0;
    }
  }
  return 0;  // fell off the end: the kernel's checker would refuse it
}

}  // namespace kbgp::testing
