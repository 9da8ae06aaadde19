// The listener's I/O-free session core: FrameAssembler (device bytes ->
// whole messages in the up ring) and DownFraming (following the backend's
// stream for its OPEN).
#include <catch2/catch.hpp>

#include <memory>
#include <numeric>
#include <vector>

#include "common/bgp_framing.h"
#include "common/layout.h"
#include "common/ring.h"
#include "listener/down_framing.h"
#include "listener/frame_assembler.h"

using kbgp::RingConsumer;
using kbgp::RingProducer;
using kbgp::listener::DownFraming;
using kbgp::listener::FrameAssembler;
namespace bgp = kbgp::bgp;
using Status = FrameAssembler::Result::Status;

namespace {

std::vector<uint8_t> message(size_t length, uint8_t type, uint8_t fill = 0xab) {
  std::vector<uint8_t> m(16, 0xff);
  m.push_back(static_cast<uint8_t>(length >> 8));
  m.push_back(static_cast<uint8_t>(length));
  m.push_back(type);
  m.resize(length, fill);
  return m;
}

std::vector<uint8_t> keepalive() { return message(19, bgp::kKeepalive); }

std::vector<uint8_t> update(size_t length, uint8_t fill = 0xab) {
  auto m = message(length, bgp::kUpdate, fill);
  if (length >= 23) m[19] = m[20] = m[21] = m[22] = 0;  // no withdrawn, no attributes
  return m;
}

std::vector<uint8_t> open_message(uint32_t asn, bool extended) {
  std::vector<uint8_t> caps = {1, 4, 0, 1, 0, 1};
  if (extended) caps.insert(caps.end(), {6, 0});
  caps.insert(caps.end(), {65, 4, uint8_t(asn >> 24), uint8_t(asn >> 16), uint8_t(asn >> 8),
                           uint8_t(asn)});
  std::vector<uint8_t> params = {2, static_cast<uint8_t>(caps.size())};
  params.insert(params.end(), caps.begin(), caps.end());
  auto m = message(29 + params.size(), bgp::kOpen);
  m.resize(19);
  m.insert(m.end(), {4, 0x5b, 0xa0 /* AS_TRANS */, 0, 90, 192, 0, 2, 1,
                     static_cast<uint8_t>(params.size())});
  m.insert(m.end(), params.begin(), params.end());
  return m;
}

// A ring in plain memory, as in a SessionRegion.
struct TestRing {
  explicit TestRing(size_t capacity) : data(capacity) {}
  kbgp::shm::RingHeader header{};
  std::vector<uint8_t> data;
  RingProducer producer() { return RingProducer(&header, data.data(), data.size()); }
  RingConsumer consumer() { return RingConsumer(&header, data.data(), data.size()); }
  std::vector<uint8_t> take_all() {
    auto c = consumer();
    std::vector<uint8_t> out(c.available());
    c.peek(0, out.data(), out.size());
    c.consume(out.size());
    return out;
  }
};

// Copies bytes into the assembler the way read() would.
void feed(FrameAssembler& a, const std::vector<uint8_t>& bytes, size_t from = 0,
          size_t n = SIZE_MAX) {
  if (n > bytes.size() - from) n = bytes.size() - from;
  auto space = a.read_space();
  REQUIRE(space.size() >= n);
  std::copy_n(bytes.begin() + static_cast<long>(from), n, space.begin());
  a.commit_read(n);
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("a message split over many reads reaches the ring whole, once complete") {
  TestRing ring(4096);
  auto producer = ring.producer();
  FrameAssembler a;
  auto msg = update(300);
  for (size_t i = 0; i + 1 < msg.size(); ++i) {
    feed(a, msg, i, 1);
    auto r = a.drain(producer);
    REQUIRE(r.status == Status::Drained);
    REQUIRE(r.messages == 0);
    REQUIRE(ring.consumer().available() == 0);
  }
  feed(a, msg, msg.size() - 1, 1);
  auto r = a.drain(producer);
  CHECK(r.status == Status::Drained);
  CHECK(r.messages == 1);
  CHECK(r.bytes == 300);
  CHECK(a.staged() == 0);
  CHECK(ring.take_all() == msg);
}

TEST_CASE("several messages in one read are all moved, a trailing partial one stays") {
  FrameAssembler a;
  auto tail = update(100, 0x11);
  auto stream = concat({keepalive(), update(50), keepalive(), update(4096, 0x22), tail});
  // All but the last 10 bytes of the final message in one read.
  auto whole = stream.size() - tail.size();
  feed(a, stream, 0, stream.size() - 10);
  TestRing big(8192);
  auto big_producer = big.producer();
  auto r = a.drain(big_producer);
  CHECK(r.status == Status::Drained);
  CHECK(r.messages == 4);
  CHECK(r.bytes == whole);
  CHECK(a.staged() == tail.size() - 10);
  feed(a, stream, stream.size() - 10);
  r = a.drain(big_producer);
  CHECK(r.messages == 1);
  CHECK(big.take_all() == stream);
}

TEST_CASE("a full ring stops the assembler until space is freed; nothing is split") {
  TestRing ring(256);
  auto producer = ring.producer();
  FrameAssembler a;
  auto m1 = update(200, 1);
  auto m2 = update(100, 2);
  auto m3 = keepalive();
  feed(a, concat({m1, m2, m3}));
  auto r = a.drain(producer);
  CHECK(r.status == Status::NeedsSpace);
  CHECK(r.messages == 1);
  CHECK(ring.consumer().available() == 200);  // m2 did not fit in the 56 bytes left
  CHECK(a.staged() == m2.size() + m3.size());
  // Still no room: nothing changes.
  r = a.drain(producer);
  CHECK(r.status == Status::NeedsSpace);
  CHECK(r.messages == 0);
  CHECK(ring.take_all() == m1);  // the uplink consumed
  r = a.drain(producer);
  CHECK(r.status == Status::Drained);
  CHECK(r.messages == 2);
  CHECK(ring.take_all() == concat({m2, m3}));
}

TEST_CASE("a bad marker is malformed at once and stays malformed") {
  TestRing ring(4096);
  auto producer = ring.producer();
  FrameAssembler a;
  auto bad = keepalive();
  bad[3] = 0x00;
  feed(a, concat({keepalive(), bad}));
  auto r = a.drain(producer);
  CHECK(r.status == Status::Malformed);
  CHECK(std::string(r.error) == "bad marker");
  CHECK(r.messages == 1);  // the good one before it went through
  feed(a, keepalive());
  r = a.drain(producer);
  CHECK(r.status == Status::Malformed);
  CHECK(r.messages == 0);
}

TEST_CASE("a bad marker is caught before 19 bytes have arrived") {
  TestRing ring(4096);
  auto producer = ring.producer();
  FrameAssembler a;
  std::vector<uint8_t> garbage = {0xff, 0xff, 'G', 'E', 'T'};
  feed(a, garbage);
  CHECK(a.drain(producer).status == Status::Malformed);
}

TEST_CASE("length 18 is malformed") {
  TestRing ring(4096);
  auto producer = ring.producer();
  FrameAssembler a;
  auto m = message(19, bgp::kKeepalive);
  m[17] = 18;
  feed(a, m);
  auto r = a.drain(producer);
  CHECK(r.status == Status::Malformed);
  CHECK(ring.consumer().available() == 0);
}

TEST_CASE("length 4097 is malformed unless both OPENs announced extended messages") {
  TestRing ring(128 * 1024);
  auto producer = ring.producer();

  SECTION("no OPEN at all") {
    FrameAssembler a;
    feed(a, update(4097), 0, 19);  // the header alone decides
    CHECK(a.drain(producer).status == Status::Malformed);
  }
  SECTION("only the device announced it") {
    FrameAssembler a;
    feed(a, open_message(65000, true));
    auto r = a.drain(producer);
    REQUIRE(r.status == Status::Drained);
    REQUIRE(r.device_open);
    CHECK(r.device_open->extended_message);
    feed(a, update(4097), 0, 19);
    CHECK(a.drain(producer).status == Status::Malformed);
  }
  SECTION("only the backend announced it") {
    FrameAssembler a;
    feed(a, open_message(65000, false));
    REQUIRE(a.drain(producer).status == Status::Drained);
    bgp::OpenInfo peer;
    peer.extended_message = true;
    a.framing().peer_open(peer);
    feed(a, update(4097), 0, 19);
    CHECK(a.drain(producer).status == Status::Malformed);
  }
}

TEST_CASE("65535-byte messages pass once both OPENs announced extended messages") {
  TestRing ring(128 * 1024);
  auto producer = ring.producer();
  FrameAssembler a;
  auto open = open_message(4200000000u, true);
  feed(a, open);
  auto r = a.drain(producer);
  REQUIRE(r.device_open);
  CHECK(r.device_open->asn == 4200000000u);
  CHECK(r.device_open->hold_time == 90);
  bgp::OpenInfo peer;
  peer.extended_message = true;
  a.framing().peer_open(peer);
  CHECK(a.framing().max_length() == bgp::kMaxExtendedMessage);

  auto big = update(65535, 0x5a);
  size_t sent = 0;
  while (sent < big.size()) {  // arrives in reads of at most 7000 bytes
    size_t n = std::min<size_t>(7000, big.size() - sent);
    feed(a, big, sent, n);
    sent += n;
    r = a.drain(producer);
    REQUIRE(r.status == Status::Drained);
  }
  CHECK(a.capacity() >= 65535);
  CHECK(r.messages == 1);
  CHECK(ring.take_all() == concat({open, big}));
  // One more than the largest length field allows is impossible; 65535 is the top.
}

TEST_CASE("the device's OPEN is reported once") {
  TestRing ring(4096);
  auto producer = ring.producer();
  FrameAssembler a;
  feed(a, concat({open_message(64512, false), keepalive()}));
  auto r = a.drain(producer);
  REQUIRE(r.device_open);
  CHECK(r.device_open->asn == 64512);
  CHECK(r.device_open->router_id == (192u | 0u << 8 | 2u << 16 | 1u << 24));
  feed(a, open_message(64513, false));
  r = a.drain(producer);
  CHECK_FALSE(r.device_open);
}

TEST_CASE("an idle buffer moves the unfinished tail to the front") {
  TestRing ring(64 * 1024);
  auto producer = ring.producer();
  FrameAssembler a;
  // Fill most of the staging buffer, leave a partial message at its end.
  std::vector<uint8_t> stream;
  while (stream.size() < FrameAssembler::kInitialCapacity - 5000) {
    auto m = update(4000);
    stream.insert(stream.end(), m.begin(), m.end());
  }
  auto last = update(3000, 0x33);
  stream.insert(stream.end(), last.begin(), last.end());
  feed(a, stream, 0, stream.size() - 1);
  auto r = a.drain(producer);
  CHECK(r.status == Status::Drained);
  CHECK(a.staged() == last.size() - 1);
  // The whole buffer minus the partial message is free again.
  CHECK(a.read_space().size() == FrameAssembler::kInitialCapacity - (last.size() - 1));
  feed(a, stream, stream.size() - 1);
  r = a.drain(producer);
  CHECK(r.messages == 1);
  CHECK(ring.take_all() == stream);
}

TEST_CASE("DownFraming finds the backend's OPEN however the bytes are cut") {
  auto open = open_message(65001, true);
  auto stream = concat({open, keepalive(), update(500), keepalive()});
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{19}, size_t{64}, stream.size()}) {
    DownFraming f;
    std::optional<bgp::OpenInfo> found;
    int opens = 0;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      size_t n = std::min(chunk, stream.size() - at);
      auto r = f.feed(std::span<const uint8_t>(stream.data() + at, n));
      if (r) {
        found = r;
        ++opens;
      }
    }
    INFO("chunk " << chunk);
    REQUIRE(found);
    CHECK(opens == 1);
    CHECK(found->asn == 65001);
    CHECK(found->extended_message);
    CHECK(f.messages() == 4);
    CHECK_FALSE(f.lost());
  }
}

TEST_CASE("DownFraming stops following a stream that is not BGP") {
  DownFraming f;
  std::vector<uint8_t> junk(100, 0x42);
  CHECK_FALSE(f.feed(junk));
  CHECK(f.lost());
  auto open = open_message(65001, true);
  CHECK_FALSE(f.feed(open));  // no longer looking
  CHECK(f.messages() == 0);
}
