// TCP-MD5 in the supervisor: the SYN header parser and its BPF filter, the
// key table (with a fake kernel and with real listening sockets), the
// lookup policy, the kernel counter parser, and the IPC rules for keys.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cbpf_interpreter.h"
#include "common/ipc.h"
#include "md5_packets.h"
#include "supervisor/md5_keys.h"
#include "supervisor/md5_lookups.h"
#include "supervisor/md5_support.h"
#include "supervisor/syn_capture.h"

using namespace kbgp;
using kbgp::testing::build_syn;
using kbgp::testing::SynSpec;

namespace {

constexpr uint16_t kIpv4 = 0x0800, kIpv6 = 0x86DD;

SynParse parse(const std::vector<uint8_t>& p, uint16_t ethertype, SynHeaders* h) {
  return parse_syn(p.data(), p.size(), ethertype, h);
}

uint32_t filter(const std::vector<uint8_t>& p, uint16_t ethertype,
                const std::vector<uint16_t>& ports = {179},
                uint32_t pkttype = PACKET_HOST) {
  return kbgp::testing::run_cbpf(syn_filter(ports), p.data(), p.size(), {pkttype, ethertype});
}

Endpoint v4(const char* a) { return *Endpoint::parse_address(a); }

}  // namespace

TEST_CASE("SYN parser: IPv4 and IPv6 SYNs with the MD5 option", "[md5][syn]") {
  SynHeaders h;
  auto p4 = build_syn(SynSpec{});
  REQUIRE(parse(p4, kIpv4, &h) == SynParse::Ok);
  CHECK(h.md5);
  CHECK(h.source.to_string() == "127.0.0.3:40000");
  CHECK(h.destination.to_string() == "127.0.0.1:179");

  auto p6 = build_syn(kbgp::testing::syn_v6());
  REQUIRE(parse(p6, kIpv6, &h) == SynParse::Ok);
  CHECK(h.md5);
  CHECK(h.source.to_string() == "[2001:db8::3]:40000");
  CHECK(h.destination.to_string() == "[::1]:179");
}

TEST_CASE("SYN parser: what is not a signed SYN", "[md5][syn]") {
  SynHeaders h;
  SynSpec s;
  s.options = {2, 4, 0x05, 0xb4};  // MSS only
  REQUIRE(parse(build_syn(s), kIpv4, &h) == SynParse::Ok);
  CHECK_FALSE(h.md5);

  s = SynSpec{};
  s.options = {0, 19, 18};  // MD5 after end-of-list does not count
  REQUIRE(parse(build_syn(s), kIpv4, &h) == SynParse::Ok);
  CHECK_FALSE(h.md5);

  s = SynSpec{};
  s.options = {8, 0, 19, 18};  // a length of 0 ends the walk
  REQUIRE(parse(build_syn(s), kIpv4, &h) == SynParse::Ok);
  CHECK_FALSE(h.md5);

  s = SynSpec{};
  s.options = {1, 1, 19, 40};  // MD5 option longer than the header
  REQUIRE(parse(build_syn(s), kIpv4, &h) == SynParse::Ok);
  CHECK_FALSE(h.md5);

  // SYN-ACK, ACK, RST, SYN+RST, FIN
  for (uint8_t flags : {uint8_t{0x12}, uint8_t{0x10}, uint8_t{0x04}, uint8_t{0x06}, uint8_t{1}}) {
    s = SynSpec{};
    s.flags = flags;
    CHECK(parse(build_syn(s), kIpv4, &h) == SynParse::NotSyn);
  }
  s = SynSpec{};
  std::memset(s.src, 0, 4);
  CHECK(parse(build_syn(s), kIpv4, &h) == SynParse::BadSource);
  s.src[0] = 224;
  CHECK(parse(build_syn(s), kIpv4, &h) == SynParse::BadSource);
  std::memset(s.src, 255, 4);
  CHECK(parse(build_syn(s), kIpv4, &h) == SynParse::BadSource);
  auto m6 = kbgp::testing::syn_v6();
  m6.src[0] = 0xff;
  CHECK(parse(build_syn(m6), kIpv6, &h) == SynParse::BadSource);

  auto p = build_syn(SynSpec{});
  CHECK(parse(p, kIpv6, &h) == SynParse::Malformed);  // version nibble 4 on IPv6
  CHECK(parse(p, 0x0806, &h) == SynParse::UnknownFamily);
  auto udp = p;
  udp[9] = 17;
  CHECK(parse(udp, kIpv4, &h) == SynParse::NotTcp);
  auto frag = p;
  frag[6] = 0x20;  // more fragments
  CHECK(parse(frag, kIpv4, &h) == SynParse::NotTcp);
  frag[6] = 0x00;
  frag[7] = 0x01;  // offset 8
  CHECK(parse(frag, kIpv4, &h) == SynParse::NotTcp);
  auto ext = build_syn(kbgp::testing::syn_v6());
  ext[6] = 0;  // hop-by-hop options first
  CHECK(parse(ext, kIpv6, &h) == SynParse::NotTcp);
}

TEST_CASE("SYN parser: truncated and inconsistent headers", "[md5][syn]") {
  SynHeaders h;
  for (bool six : {false, true}) {
    auto p = build_syn(six ? kbgp::testing::syn_v6() : SynSpec{});
    uint16_t et = six ? kIpv6 : kIpv4;
    for (size_t n = 0; n < p.size(); ++n) {
      // Every prefix: a clear verdict, never a read past n (ASan in the
      // fuzzer; here the copy has exactly n bytes).
      std::vector<uint8_t> cut(p.begin(), p.begin() + static_cast<long>(n));
      CHECK(parse_syn(cut.empty() ? nullptr : cut.data(), cut.size(), et, &h) != SynParse::Ok);
    }
  }
  auto p = build_syn(SynSpec{});
  auto bad = p;
  bad[0] = 0x44;  // IHL 16 bytes
  CHECK(parse(bad, kIpv4, &h) == SynParse::Malformed);
  bad = p;
  bad[0] = 0x4f;  // IHL 60 > TCP header's start
  CHECK(parse(bad, kIpv4, &h) != SynParse::Ok);
  bad = p;
  bad[3] = 30;  // total length shorter than the headers
  CHECK(parse(bad, kIpv4, &h) == SynParse::Malformed);
  bad = p;
  bad[20 + 12] = 0x40;  // data offset 4 words
  CHECK(parse(bad, kIpv4, &h) == SynParse::Malformed);
  bad = p;
  bad[20 + 12] = 0xf0;  // data offset 60 bytes, past the packet
  CHECK(parse(bad, kIpv4, &h) == SynParse::Malformed);
}

TEST_CASE("SYN filter: passes exactly signed SYNs to our ports, inbound", "[md5][syn][bpf]") {
  auto prog = syn_filter({179, 1179});
  REQUIRE_FALSE(prog.empty());
  CHECK(prog.size() < BPF_MAXINSNS);
  CHECK(kbgp::testing::kernel_accepts(prog));
  CHECK(kbgp::testing::kernel_accepts(syn_filter({})));
  std::vector<uint16_t> many;
  for (uint16_t p = 1; p <= 40; ++p) many.push_back(p);
  CHECK(kbgp::testing::kernel_accepts(syn_filter(many)));
  auto p4 = build_syn(SynSpec{});
  auto p6 = build_syn(kbgp::testing::syn_v6());
  CHECK(filter(p4, kIpv4, {179, 1179}) == kSynSnapLength);
  CHECK(filter(p6, kIpv6, {179, 1179}) == kSynSnapLength);
  CHECK(filter(p4, kIpv4, {180}) == 0);                                   // another port
  CHECK(filter(p4, kIpv4, {179}, PACKET_OUTGOING) == 0);                  // lo's second copy
  CHECK(filter(p4, kIpv6) == 0);                                          // wrong ethertype
  CHECK(filter(p4, 0x0806) == 0);
  CHECK(filter(p4, kIpv4, {}) == 0);                                      // no listener
  SynSpec s;
  s.options = {2, 4, 0x05, 0xb4};
  CHECK(filter(build_syn(s), kIpv4) == 0);                                // unsigned
  s = SynSpec{};
  s.flags = 0x12;
  CHECK(filter(build_syn(s), kIpv4) == 0);                                // SYN-ACK
  s = SynSpec{};
  // 38 NOPs, then MD5: the walk is unrolled far enough.
  s.options.assign(38, 1);
  s.options.insert(s.options.end(), {19, 2});
  auto far = build_syn(s);
  SynHeaders h;
  REQUIRE(parse(far, kIpv4, &h) == SynParse::Ok);
  CHECK(h.md5);
  CHECK(filter(far, kIpv4) == kSynSnapLength);
  // IP options (IHL 6) move the TCP header.
  auto withopt = build_syn(SynSpec{});
  withopt.insert(withopt.begin() + 20, {1, 1, 1, 0});
  withopt[0] = 0x46;
  withopt[3] = static_cast<uint8_t>(withopt.size());
  REQUIRE(parse(withopt, kIpv4, &h) == SynParse::Ok);
  CHECK(h.md5);
  CHECK(filter(withopt, kIpv4) == kSynSnapLength);
}

TEST_CASE("SYN filter: never drops what the parser accepts (random mutations)",
          "[md5][syn][bpf]") {
  std::mt19937 rng(12345);
  auto prog = syn_filter({179});
  std::vector<std::vector<uint8_t>> seeds = {build_syn(SynSpec{}),
                                             build_syn(kbgp::testing::syn_v6())};
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    bool six = round % 2;
    auto p = seeds[six];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = (six ? 40 : 20) + rng() % (p.size() - (six ? 40 : 20));
      if (rng() % 8 == 0) at = rng() % p.size();
      p[at] = static_cast<uint8_t>(rng());
    }
    if (rng() % 5 == 0) p.resize(rng() % p.size());
    SynHeaders h;
    bool parsed = parse_syn(p.empty() ? nullptr : p.data(), p.size(), six ? kIpv6 : kIpv4, &h) ==
                  SynParse::Ok;
    uint32_t kept = kbgp::testing::run_cbpf(prog, p.data(), p.size(),
                                            {PACKET_HOST, six ? kIpv6 : kIpv4});
    if (parsed && h.md5 && h.destination.port == 179) {
      ++accepted;
      INFO("round " << round);
      CHECK(kept == kSynSnapLength);
    }
  }
  CHECK(accepted > 100);
}

TEST_CASE("kernel counters from /proc/net/netstat", "[md5]") {
  const char* text =
      "TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPAckCompressed\n"
      "TcpExt: 0 12 3 45 0\n"
      "IpExt: InNoRoutes InTruncatedPkts\n"
      "IpExt: 0 0\n";
  KernelMd5Counters c;
  REQUIRE(parse_kernel_md5_counters(text, &c));
  CHECK(c.not_found == 12);
  CHECK(c.unexpected == 3);
  CHECK(c.failure == 45);
  CHECK_FALSE(parse_kernel_md5_counters("IpExt: a b\nIpExt: 1 2\n", &c));
  CHECK_FALSE(parse_kernel_md5_counters("TcpExt: TCPMD5NotFound\nTcpExt: x\n", &c));
  // The real file, when there is one.
  int fd = ::open("/proc/net/netstat", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[16384];
    ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    ::close(fd);
    REQUIRE(n > 0);
    CHECK(parse_kernel_md5_counters(std::string_view(buf, static_cast<size_t>(n)), &c));
  }
}

namespace {

struct FakeKernel {
  struct Call {
    std::string listener;
    std::string device;
    std::string key;
  };
  std::vector<Call> calls;
  int fail_with = 0;
  std::string fail_on;  // listener address text

  Md5KeyTable::SetKey setter() {
    return [this](const Md5Listener& l, const Endpoint& d, const uint8_t* key, size_t len) {
      calls.push_back({l.address.to_string(), d.address_string(),
                       std::string(reinterpret_cast<const char*>(key), len)});
      if (fail_with && l.address.to_string() == fail_on && len) return fail_with;
      return 0;
    };
  }
};

Md5Listener listener(const char* where, bool dual_stack = false) {
  Md5Listener l;
  l.fd = 100;
  l.address = *Endpoint::parse(where);
  l.dual_stack = dual_stack;
  return l;
}

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace

TEST_CASE("key table: families, replace, refresh, remove, expire", "[md5][keys]") {
  FakeKernel kernel;
  Md5KeyTable table({listener("0.0.0.0:179"), listener("[::]:179"), listener("[::]:1179", true)},
                    131072, kernel.setter());
  std::string error;
  CHECK(table.install(v4("127.0.0.3"), bytes("k3"), 2, 100, &error) ==
        Md5KeyTable::Result::Installed);
  // IPv4: the AF_INET socket and the dual-stack one, not the v6-only one.
  REQUIRE(kernel.calls.size() == 2);
  CHECK(kernel.calls[0].listener == "0.0.0.0:179");
  CHECK(kernel.calls[1].listener == "[::]:1179");
  kernel.calls.clear();
  CHECK(table.install(*Endpoint::parse_address("2001:db8::3"), bytes("k6"), 2, 100, &error) ==
        Md5KeyTable::Result::Installed);
  REQUIRE(kernel.calls.size() == 2);
  CHECK(kernel.calls[0].listener == "[::]:179");
  CHECK(kernel.calls[1].listener == "[::]:1179");
  CHECK(table.most_on_one_socket() == 2);  // the dual-stack socket holds both

  kernel.calls.clear();
  CHECK(table.install(v4("127.0.0.3"), bytes("k3"), 2, 200, &error) ==
        Md5KeyTable::Result::Refreshed);
  CHECK(kernel.calls.empty());
  // A v4-mapped address is the same device.
  CHECK(table.has(*Endpoint::parse_address("::ffff:127.0.0.3")));
  CHECK(table.install(v4("127.0.0.3"), bytes("new3"), 4, 200, &error) ==
        Md5KeyTable::Result::Replaced);
  CHECK(kernel.calls.size() == 2);
  CHECK(kernel.calls[0].key == "new3");
  CHECK(table.size() == 2);

  kernel.calls.clear();
  CHECK(table.remove(v4("127.0.0.3")));
  REQUIRE(kernel.calls.size() == 2);
  CHECK(kernel.calls[0].key.empty());  // key length 0 deletes
  CHECK_FALSE(table.remove(v4("127.0.0.3")));
  CHECK_FALSE(table.has(v4("127.0.0.3")));

  auto gone = table.expire(99);
  CHECK(gone.empty());
  gone = table.expire(100);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].address_string() == "2001:db8::3");
  CHECK(table.size() == 0);
  CHECK(table.most_on_one_socket() == 0);

  CHECK(table.install(v4("127.0.0.4"), bytes(""), 0, 1, &error) == Md5KeyTable::Result::Invalid);
  std::string long_key(81, 'x');
  CHECK(table.install(v4("127.0.0.4"), bytes(long_key), 81, 1, &error) ==
        Md5KeyTable::Result::Invalid);
}

TEST_CASE("key table: a refused key is on no socket and the error names the sysctl",
          "[md5][keys]") {
  FakeKernel kernel;
  Md5KeyTable table({listener("0.0.0.0:179"), listener("127.0.0.1:1179")}, 131072,
                    kernel.setter());
  kernel.fail_with = ENOMEM;
  kernel.fail_on = "127.0.0.1:1179";
  std::string error;
  CHECK(table.install(v4("127.0.0.3"), bytes("k3"), 2, 100, &error) ==
        Md5KeyTable::Result::Refused);
  CHECK_THAT(error, Catch::Contains("net.core.optmem_max") && Catch::Contains("127.0.0.1:1179"));
  CHECK_THAT(error, !Catch::Contains("k3"));
  // Installed on the first socket, then taken off again.
  REQUIRE(kernel.calls.size() == 3);
  CHECK(kernel.calls[2].listener == "0.0.0.0:179");
  CHECK(kernel.calls[2].key.empty());
  CHECK(table.size() == 0);
}

TEST_CASE("key table: warns at 80 % of what optmem_max allows, once", "[md5][keys]") {
  FakeKernel kernel;
  // 10 keys per socket.
  Md5KeyTable table({listener("0.0.0.0:179")}, 10 * Md5KeyTable::kKernelBytesPerKey,
                    kernel.setter());
  CHECK(table.capacity_per_socket() == 10);
  std::string error;
  for (int i = 1; i <= 7; ++i) {
    std::string ip = "10.0.0." + std::to_string(i);
    table.install(v4(ip.c_str()), bytes("k"), 1, 100, &error);
    CHECK(table.take_capacity_warning().empty());
  }
  table.install(v4("10.0.0.8"), bytes("k"), 1, 100, &error);
  std::string warning = table.take_capacity_warning();
  CHECK_THAT(warning, Catch::Contains("net.core.optmem_max") && Catch::Contains("8 of about 10"));
  table.install(v4("10.0.0.9"), bytes("k"), 1, 100, &error);
  CHECK(table.take_capacity_warning().empty());
}

namespace {

// A listening socket on loopback and a client that signs with `client_key`
// (empty: unsigned). True when the connection was accepted within the wait.
bool connects(int listen_fd, const Endpoint& server, const Endpoint& client_addr,
              const std::string& client_key, int wait_ms) {
  UniqueFd c(::socket(client_addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  REQUIRE(c);
  sockaddr_storage ss;
  socklen_t len = client_addr.to_sockaddr(&ss);
  REQUIRE(::bind(c.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0);
  if (!client_key.empty()) {
    tcp_md5sig sig{};
    Endpoint peer = server;
    peer.port = 0;
    socklen_t plen = peer.to_sockaddr(reinterpret_cast<sockaddr_storage*>(&sig.tcpm_addr));
    (void)plen;
    sig.tcpm_keylen = static_cast<uint16_t>(client_key.size());
    std::memcpy(sig.tcpm_key, client_key.data(), client_key.size());
    REQUIRE(::setsockopt(c.get(), IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof sig) == 0);
  }
  len = server.to_sockaddr(&ss);
  int rc = ::connect(c.get(), reinterpret_cast<sockaddr*>(&ss), len);
  REQUIRE((rc == 0 || errno == EINPROGRESS));
  pollfd pfd{listen_fd, POLLIN, 0};
  if (::poll(&pfd, 1, wait_ms) != 1) return false;
  UniqueFd accepted(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  return accepted.valid();
}

UniqueFd listen_on(const char* where, bool v6only) {
  Endpoint e = *Endpoint::parse(where);
  UniqueFd fd(::socket(e.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  if (e.family == AF_INET6) {
    int v = v6only ? 1 : 0;
    REQUIRE(::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v) == 0);
  }
  sockaddr_storage ss;
  socklen_t len = e.to_sockaddr(&ss);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0);
  REQUIRE(::listen(fd.get(), 16) == 0);
  return fd;
}

Endpoint bound(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace

TEST_CASE("key table: the kernel takes the keys (IPv4, IPv6, v4-mapped on dual-stack)",
          "[md5][keys][kernel]") {
  UniqueFd l4 = listen_on("127.0.0.1:0", false);
  UniqueFd l6 = listen_on("[::1]:0", true);
  UniqueFd dual = listen_on("[::]:0", false);
  auto listeners = describe_listeners({l4.get(), l6.get(), dual.get()});
  REQUIRE(listeners.size() == 3);
  CHECK_FALSE(listeners[1].dual_stack);
  CHECK(listeners[2].dual_stack);
  Md5KeyTable table(listeners, read_optmem_max().value_or(kDefaultOptmemMax));
  std::string error;
  Endpoint dev4 = v4("127.0.0.77"), dev6 = *Endpoint::parse_address("::1");
  REQUIRE(table.install(dev4, bytes("four-key"), 8, INT64_MAX, &error) ==
          Md5KeyTable::Result::Installed);
  REQUIRE(table.install(dev6, bytes("six-key"), 7, INT64_MAX, &error) ==
          Md5KeyTable::Result::Installed);

  Endpoint s4 = bound(l4.get()), s6 = bound(l6.get()), sd = bound(dual.get());
  Endpoint sd4 = v4("127.0.0.1");
  sd4.port = sd.port;  // IPv4 to the dual-stack socket
  CHECK(connects(l4.get(), s4, dev4, "four-key", 2000));
  CHECK(connects(l6.get(), s6, dev6, "six-key", 2000));
  CHECK(connects(dual.get(), sd4, dev4, "four-key", 2000));
  // Wrong key, no key: the SYN is dropped (no accept within the wait).
  CHECK_FALSE(connects(l4.get(), s4, dev4, "wrong", 300));
  CHECK_FALSE(connects(l4.get(), s4, dev4, "", 300));
  // Another device without a key still connects unsigned.
  CHECK(connects(l4.get(), s4, v4("127.0.0.78"), "", 2000));

  // Replaced: the new key works, the old no longer.
  REQUIRE(table.install(dev4, bytes("four-new"), 8, INT64_MAX, &error) ==
          Md5KeyTable::Result::Replaced);
  CHECK(connects(l4.get(), s4, dev4, "four-new", 2000));
  CHECK_FALSE(connects(l4.get(), s4, dev4, "four-key", 300));
  // Removed: unsigned works again, signed does not.
  REQUIRE(table.remove(dev4));
  CHECK(connects(l4.get(), s4, dev4, "", 2000));
  CHECK(connects(dual.get(), sd4, dev4, "", 2000));
}

TEST_CASE("lookup policy: per source, pending, answers", "[md5][lookups]") {
  using P = Md5LookupPolicy;
  const int64_t s = P::kSecond;
  int64_t t = 1000 * s;
  P p(t);
  Endpoint a = v4("10.0.0.1");
  CHECK(p.on_signed_syn(a, false, t) == P::Verdict::Lookup);
  CHECK(p.pending() == 1);
  CHECK(p.on_signed_syn(a, false, t + s) == P::Verdict::Pending);
  p.on_answer(a, P::Answer::Key, t + s);
  CHECK(p.pending() == 0);
  // Installed now: SYNs need nothing, until they keep failing.
  CHECK(p.on_signed_syn(a, true, t + 2 * s) == P::Verdict::KeyInstalled);
  p.on_accept(a);
  CHECK(p.on_signed_syn(a, true, t + 40 * s) == P::Verdict::KeyInstalled);
  CHECK(p.take_failing(t + 40 * s).empty());
  CHECK(p.on_signed_syn(a, true, t + 42 * s) == P::Verdict::KeyInstalled);
  // Failing for 4 s, last asked 44 s ago: ask again (the key may have changed).
  CHECK(p.on_signed_syn(a, true, t + 44 * s) == P::Verdict::Lookup);
  auto failing = p.take_failing(t + 44 * s);
  REQUIRE(failing.size() == 1);
  CHECK(failing[0].source.address_string() == "10.0.0.1");
  CHECK(failing[0].syns == 3);
  CHECK(p.take_failing(t + 45 * s).empty());  // once per minute
  p.on_answer(a, P::Answer::Key, t + 44 * s);
  CHECK(p.on_signed_syn(a, true, t + 50 * s) == P::Verdict::KeyInstalled);  // asked 6 s ago
  p.on_accept(a);

  // No key at the backend: asked again only after a minute.
  Endpoint b = v4("10.0.0.2");
  CHECK(p.on_signed_syn(b, false, t) == P::Verdict::Lookup);
  p.on_answer(b, P::Answer::NoKey, t);
  CHECK(p.on_signed_syn(b, false, t + 30 * s) == P::Verdict::SourceLimited);
  CHECK(p.on_signed_syn(b, false, t + 61 * s) == P::Verdict::Lookup);
  // Failed lookups: again after 5 s.
  p.on_answer(b, P::Answer::Failed, t + 61 * s);
  CHECK(p.on_signed_syn(b, false, t + 63 * s) == P::Verdict::SourceLimited);
  CHECK(p.on_signed_syn(b, false, t + 66 * s) == P::Verdict::Lookup);
  // Unanswered: the pending lookup times out.
  auto expired = p.expire(t + 66 * s + P::kAnswerTimeout);
  REQUIRE(expired.size() == 1);
  CHECK(p.pending() == 0);
  // Not sent after all: the source may ask at once.
  Endpoint c = v4("10.0.0.3");
  CHECK(p.on_signed_syn(c, false, t) == P::Verdict::Lookup);
  p.lookup_not_sent(c);
  CHECK(p.pending() == 0);
  CHECK(p.on_signed_syn(c, false, t) == P::Verdict::Lookup);
}

TEST_CASE("lookup policy: a flood of forged sources stays bounded", "[md5][lookups]") {
  using P = Md5LookupPolicy;
  const int64_t s = P::kSecond;
  int64_t t = 1000 * s;
  P p(t);
  size_t lookups = 0, busy = 0;
  for (uint32_t i = 0; i < 100000; ++i) {
    Endpoint e;
    e.family = AF_INET;
    uint32_t addr = htonl(0x0a000000u + i);
    std::memcpy(e.addr, &addr, 4);
    auto v = p.on_signed_syn(e, false, t);  // all in the same instant
    lookups += v == P::Verdict::Lookup;
    busy += v == P::Verdict::Busy;
  }
  CHECK(p.sources() <= P::kMaxSources);
  CHECK(lookups == P::kMaxPending);  // the pending cap before the burst
  CHECK(p.pending() <= P::kMaxPending);
  CHECK(busy == 100000 - lookups);
  // Time passes, the lookups time out; a real device then gets its turn.
  t += P::kAnswerTimeout;
  p.expire(t);
  CHECK(p.pending() == 0);
  CHECK(p.on_signed_syn(v4("192.0.2.1"), false, t) == P::Verdict::Lookup);
  // The overall rate: without answers, no more than the burst at once and
  // then kRatePerSecond.
  P q(t);
  size_t asked = 0;
  for (uint32_t i = 0; i < 1000; ++i) {
    Endpoint e;
    e.family = AF_INET;
    uint32_t addr = htonl(0x0b000000u + i);
    std::memcpy(e.addr, &addr, 4);
    if (q.on_signed_syn(e, false, t) == P::Verdict::Lookup) {
      ++asked;
      q.on_answer(e, P::Answer::Blocked, t);
    }
  }
  CHECK(asked == P::kBurst);
}

TEST_CASE("IPC: keys come only from the uplink, lookups only from the supervisor",
          "[md5][ipc]") {
  CHECK(ipc::may_send(shm::WorkerKind::Uplink, ipc::MsgType::InstallMd5Key));
  CHECK_FALSE(ipc::may_send(shm::WorkerKind::Listener, ipc::MsgType::InstallMd5Key));
  CHECK_FALSE(ipc::may_send(shm::WorkerKind::Admin, ipc::MsgType::InstallMd5Key));
  for (auto k : {shm::WorkerKind::Listener, shm::WorkerKind::Uplink, shm::WorkerKind::Admin})
    CHECK_FALSE(ipc::may_send(k, ipc::MsgType::Md5Lookup));
  CHECK(ipc::expected_length(ipc::MsgType::InstallMd5Key) == sizeof(ipc::InstallMd5Key));
  CHECK(ipc::fd_count(ipc::MsgType::InstallMd5Key, shm::WorkerKind::Uplink) == 0);
  CHECK(ipc::fd_count(ipc::MsgType::Md5Lookup, shm::WorkerKind::Uplink) == 0);

  // A listener's InstallMd5Key is refused on receipt.
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
  UniqueFd a(fds[0]), b(fds[1]);
  auto msg = ipc::make<ipc::InstallMd5Key>(ipc::MsgType::InstallMd5Key);
  REQUIRE(ipc::send_msg(a.get(), &msg, sizeof msg));
  shm::WorkerKind listener = shm::WorkerKind::Listener;
  auto got = ipc::recv_msg(b.get(), &listener, listener);
  CHECK(got.status == ipc::Received::Status::Invalid);
  REQUIRE(ipc::send_msg(a.get(), &msg, sizeof msg));
  shm::WorkerKind uplink = shm::WorkerKind::Uplink;
  got = ipc::recv_msg(b.get(), &uplink, uplink);
  CHECK(got.status == ipc::Received::Status::Ok);
}

TEST_CASE("SYN filter: the kernel takes it", "[md5][syn][bpf][kernel]") {
  // SO_ATTACH_FILTER runs the same checks on any socket, no privilege needed.
  for (const auto& ports : {std::vector<uint16_t>{179}, std::vector<uint16_t>{},
                            std::vector<uint16_t>{179, 1179, 2179, 3179}}) {
    auto program = syn_filter(ports);
    sock_fprog prog{static_cast<unsigned short>(program.size()), program.data()};
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(s);
    INFO("ports " << ports.size() << ": " << std::strerror(errno));
    CHECK(::setsockopt(s.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0);
  }
}

TEST_CASE("SYN capture: sees a signed SYN on lo (needs CAP_NET_RAW)", "[md5][syn][kernel]") {
  UniqueFd l = listen_on("127.0.0.1:0", false);
  Endpoint server = bound(l.get());
  std::string error;
  auto capture = SynCapture::open("lo", {server.port}, &error);
  if (!capture) {
    WARN("skipped: " << error);
    return;
  }
  bool no_interface = false;
  CHECK_FALSE(SynCapture::open("no-such-if0", {server.port}, &error, &no_interface));
  CHECK(no_interface);
  CHECK_THAT(error, Catch::Contains("no network interface"));
  // No key on the listener: the signed SYN is dropped, and captured once
  // (lo's outgoing copy is filtered out), as is its first retry.
  connects(l.get(), server, v4("127.0.0.91"), "some-key", 1300);
  std::vector<SynHeaders> seen;
  SynCapture::Stats stats;
  for (int i = 0; i < 20 && seen.empty(); ++i) {
    pollfd pfd{capture->fd(), POLLIN, 0};
    ::poll(&pfd, 1, 100);
    REQUIRE(capture->drain(64, &stats, [&](const SynHeaders& h) { seen.push_back(h); }));
  }
  REQUIRE_FALSE(seen.empty());
  CHECK(seen[0].source.address_string() == "127.0.0.91");
  CHECK(seen[0].destination == server);
  CHECK(seen[0].md5);
  CHECK(stats.ignored == 0);  // the filter passed nothing else
  // An unsigned connection is not captured.
  seen.clear();
  CHECK(connects(l.get(), server, v4("127.0.0.92"), "", 2000));
  pollfd pfd{capture->fd(), POLLIN, 0};
  ::poll(&pfd, 1, 200);
  REQUIRE(capture->drain(64, &stats, [&](const SynHeaders& h) { seen.push_back(h); }));
  CHECK(seen.empty());
}

namespace {

ipc::InstallMd5Key key_message(const char* ip, ipc::Md5KeyOp op, const std::string& key,
                               uint32_t ttl, bool answers_lookup = false) {
  auto m = ipc::make<ipc::InstallMd5Key>(ipc::MsgType::InstallMd5Key);
  m.device = v4(ip);
  m.op = static_cast<uint32_t>(op);
  m.answers_lookup = answers_lookup ? 1 : 0;
  m.ttl_seconds = ttl;
  m.key_length = static_cast<uint32_t>(key.size());
  std::memcpy(m.key, key.data(), key.size());
  return m;
}

}  // namespace

TEST_CASE("MD5 support: key messages, expiry, accept flag, counters", "[md5][support]") {
  UniqueFd l = listen_on("127.0.0.1:0", false);
  Endpoint server = bound(l.get());
  shm::GlobalCounters counters{};
  std::vector<std::pair<Endpoint, Endpoint>> lookups;
  Md5Support::Hooks hooks;
  hooks.send_lookup = [&](const Endpoint& d, const Endpoint& local) {
    lookups.emplace_back(d, local);
    return true;
  };
  hooks.denied = [](const Endpoint&) { return false; };
  std::string error;
  auto md5 = Md5Support::create("lo", {l.get()}, &counters, hooks, &error);
  REQUIRE(md5);
  const int64_t s = 1'000'000'000;
  int64_t t = 1000 * s;

  md5->on_key_message(key_message("127.0.0.81", ipc::Md5KeyOp::Install, "k81", 2), t);
  md5->on_key_message(key_message("127.0.0.82", ipc::Md5KeyOp::Install, "k82", 0), t);
  CHECK(counters.md5_keys.load() == 2);
  CHECK(counters.md5_keys_installed.load() == 2);
  CHECK(md5->on_accept(v4("127.0.0.81")));
  CHECK_FALSE(md5->on_accept(v4("127.0.0.83")));
  CHECK(connects(l.get(), server, v4("127.0.0.81"), "k81", 2000));

  // Invalid messages change nothing.
  md5->on_key_message(key_message("127.0.0.84", ipc::Md5KeyOp::Install, "", 60), t);
  md5->on_key_message(key_message("127.0.0.84", static_cast<ipc::Md5KeyOp>(99), "", 60), t);
  md5->on_key_message(key_message("127.0.0.84", ipc::Md5KeyOp::Unanswered, "", 0), t);
  auto no_family = key_message("127.0.0.84", ipc::Md5KeyOp::Install, "k", 60);
  no_family.device.family = 0;
  md5->on_key_message(no_family, t);
  auto too_long = key_message("127.0.0.84", ipc::Md5KeyOp::Install, "k", 60);
  too_long.key_length = 81;
  md5->on_key_message(too_long, t);
  CHECK(counters.md5_keys.load() == 2);

  // The ttl: 2 s for .81; 30 s for .82 (its answer may not be cached).
  md5->tick(t + 1 * s);
  CHECK(counters.md5_keys.load() == 2);
  md5->tick(t + 2 * s);
  CHECK(counters.md5_keys.load() == 1);
  CHECK_FALSE(md5->on_accept(v4("127.0.0.81")));
  CHECK(connects(l.get(), server, v4("127.0.0.81"), "", 2000));
  md5->tick(t + (Md5Support::kUncachedKeySeconds + 1) * s);
  CHECK(counters.md5_keys.load() == 0);
  CHECK(counters.md5_keys_removed.load() == 2);

  // No key / blocked answers remove a key; an unanswered lookup counts.
  md5->on_key_message(key_message("127.0.0.85", ipc::Md5KeyOp::Install, "k85", 600), t);
  md5->on_key_message(key_message("127.0.0.86", ipc::Md5KeyOp::Install, "k86", 600), t);
  CHECK(counters.md5_keys.load() == 2);
  md5->on_key_message(key_message("127.0.0.85", ipc::Md5KeyOp::NoKey, "", 600), t);
  md5->on_key_message(key_message("127.0.0.86", ipc::Md5KeyOp::Blocked, "", 1200), t);
  CHECK(counters.md5_keys.load() == 0);
  md5->on_key_message(key_message("127.0.0.87", ipc::Md5KeyOp::Unanswered, "", 0, true), t);
  CHECK(counters.md5_lookups_failed.load() == 1);

  // A signed SYN from a device without a key asks the uplink (through the
  // capture, when this process may open one).
  if (md5->capture_fd() >= 0) {
    // The SYNs captured so far (.81 while it had a key) are stale here.
    md5->on_capture_readable(t + 3 * s);
    lookups.clear();
    uint64_t asked_before = counters.md5_lookups.load();
    connects(l.get(), server, v4("127.0.0.88"), "k88", 300);
    for (int i = 0; i < 20 && lookups.empty(); ++i) {
      pollfd pfd{md5->capture_fd(), POLLIN, 0};
      ::poll(&pfd, 1, 100);
      md5->on_capture_readable(t + 3 * s);
    }
    REQUIRE(lookups.size() == 1);
    CHECK(lookups[0].first.address_string() == "127.0.0.88");
    CHECK(lookups[0].second == server);
    CHECK(counters.md5_syns_seen.load() >= 1);
    CHECK(counters.md5_lookups.load() == asked_before + 1);
    md5->on_key_message(key_message("127.0.0.88", ipc::Md5KeyOp::Install, "k88", 600, true),
                        t + 3 * s);
    CHECK(connects(l.get(), server, v4("127.0.0.88"), "k88", 2000));
  } else {
    WARN("no SYN capture (needs CAP_NET_RAW): the lookup part is skipped");
  }
  // The kernel counters were read from /proc/net/netstat.
  CHECK(counters.kernel_md5_unexpected.load() + counters.kernel_md5_failure.load() +
            counters.kernel_md5_not_found.load() > 0);
}
