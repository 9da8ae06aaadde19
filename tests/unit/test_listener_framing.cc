// The listener's I/O-free session core: FrameAssembler (device bytes staged
// in the up ring, whole messages published) and DownFraming (following the
// backend's stream for its OPEN), including how a restarted listener
// continues from what its predecessor left in the session region.
#include <catch2/catch.hpp>

#include <algorithm>
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
namespace shm = kbgp::shm;
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

// An up ring and the listener's record, as in a SessionRegion, in plain
// memory; `capacity` may be smaller than a real ring's.
struct TestSession {
  explicit TestSession(size_t capacity) : data(capacity), record(std::make_unique<shm::ListenerRecord>()) {}
  shm::RingHeader header{};
  std::vector<uint8_t> data;
  std::unique_ptr<shm::ListenerRecord> record;
  RingProducer producer() { return RingProducer(&header, data.data(), data.size()); }
  RingConsumer consumer() { return RingConsumer(&header, data.data(), data.size()); }
  FrameAssembler assembler() { return FrameAssembler(producer(), record.get()); }
  std::vector<uint8_t> take_all() {
    auto c = consumer();
    std::vector<uint8_t> out(c.available());
    c.peek(0, out.data(), out.size());
    c.consume(out.size());
    return out;
  }
};

// Copies bytes into the assembler's read space the way readv() would
// (without recording them); returns how many fitted.
size_t place(FrameAssembler& a, const std::vector<uint8_t>& bytes, size_t from, size_t n) {
  auto space = a.read_space();
  n = std::min({n, bytes.size() - from, space.first.size() + space.second.size()});
  size_t n1 = std::min(n, space.first.size());
  std::copy_n(bytes.begin() + static_cast<long>(from), n1, space.first.begin());
  std::copy_n(bytes.begin() + static_cast<long>(from + n1), n - n1, space.second.begin());
  return n;
}

// place() and record: a read() followed by commit_read().
size_t feed(FrameAssembler& a, const std::vector<uint8_t>& bytes, size_t from = 0,
            size_t n = SIZE_MAX) {
  size_t placed = place(a, bytes, from, n);
  a.commit_read(placed);
  return placed;
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("a message split over many reads reaches the ring whole, once complete") {
  TestSession t(4096);
  auto a = t.assembler();
  auto msg = update(300);
  for (size_t i = 0; i + 1 < msg.size(); ++i) {
    REQUIRE(feed(a, msg, i, 1) == 1);
    auto r = a.drain();
    REQUIRE(r.status == Status::Drained);
    REQUIRE(r.messages == 0);
    REQUIRE(t.consumer().available() == 0);
  }
  feed(a, msg, msg.size() - 1, 1);
  auto r = a.drain();
  CHECK(r.status == Status::Drained);
  CHECK(r.messages == 1);
  CHECK(r.bytes == 300);
  CHECK(a.staged() == 0);
  CHECK(a.taken() == 300);
  CHECK(t.record->up_taken.load() == 300);
  CHECK(t.take_all() == msg);
}

TEST_CASE("several messages in one read are all published, a trailing partial one stays") {
  TestSession t(16384);
  auto a = t.assembler();
  auto tail = update(100, 0x11);
  auto stream = concat({keepalive(), update(50), keepalive(), update(4096, 0x22), tail});
  auto whole = stream.size() - tail.size();
  feed(a, stream, 0, stream.size() - 10);
  auto r = a.drain();
  CHECK(r.status == Status::Drained);
  CHECK(r.messages == 4);
  CHECK(r.bytes == whole);
  CHECK(a.staged() == tail.size() - 10);
  feed(a, stream, stream.size() - 10);
  r = a.drain();
  CHECK(r.messages == 1);
  CHECK(t.take_all() == stream);
}

TEST_CASE("a full ring stops reading; a message is published only whole") {
  TestSession t(256);
  auto a = t.assembler();
  auto m1 = update(200, 1);
  auto m2 = update(100, 2);
  auto m3 = keepalive();
  auto stream = concat({m1, m2, m3});
  size_t first = feed(a, stream);
  CHECK(first == 256);  // m1 and 56 bytes of m2: the ring is full
  auto r = a.drain();
  CHECK(r.status == Status::NeedsSpace);
  CHECK(r.messages == 1);
  CHECK(t.consumer().available() == 200);
  CHECK(a.staged() == 56);
  CHECK(a.read_space().first.empty());
  // Still no room: nothing changes.
  r = a.drain();
  CHECK(r.status == Status::NeedsSpace);
  CHECK(r.messages == 0);
  CHECK(t.take_all() == m1);  // the uplink consumed
  feed(a, stream, first);
  r = a.drain();
  CHECK(r.status == Status::Drained);
  CHECK(r.messages == 2);
  CHECK(t.take_all() == concat({m2, m3}));
}

TEST_CASE("messages that wrap around the end of the ring arrive intact") {
  TestSession t(1024);
  auto a = t.assembler();
  std::vector<uint8_t> stream;
  for (int i = 0; i < 60; ++i) {
    auto m = update(23 + static_cast<size_t>(i * 37 % 300), static_cast<uint8_t>(i));
    stream.insert(stream.end(), m.begin(), m.end());
  }
  std::vector<uint8_t> got;
  size_t at = 0;
  while (at < stream.size()) {
    at += feed(a, stream, at, 333);  // odd-sized reads
    auto r = a.drain();
    REQUIRE(r.status != Status::Malformed);
    auto part = t.take_all();
    got.insert(got.end(), part.begin(), part.end());
  }
  CHECK(got == stream);
}

TEST_CASE("unpublished bytes are viewed in place unless they wrap around the ring's end") {
  TestSession t(64);
  t.header.write_pos.store(40);
  t.header.read_pos.store(40);
  auto p = t.producer();
  std::iota(t.data.begin(), t.data.end(), uint8_t{0});
  uint8_t scratch[19] = {};
  auto in_place = p.view_unpublished(2, 19, scratch);  // ring positions 42..60
  CHECK(in_place.data() == t.data.data() + 42);
  CHECK(in_place[0] == 42);
  auto wrapped = p.view_unpublished(10, 19, scratch);  // 50..63, then 0..4
  CHECK(wrapped.data() == scratch);
  std::vector<uint8_t> want;
  for (int i = 50; i < 69; ++i) want.push_back(static_cast<uint8_t>(i % 64));
  CHECK(std::vector<uint8_t>(wrapped.begin(), wrapped.end()) == want);
}

TEST_CASE("a bad marker is malformed at once and stays malformed") {
  TestSession t(4096);
  auto a = t.assembler();
  auto bad = keepalive();
  bad[3] = 0x00;
  feed(a, concat({keepalive(), bad}));
  auto r = a.drain();
  CHECK(r.status == Status::Malformed);
  CHECK(std::string(r.error) == "bad marker");
  CHECK(r.messages == 1);  // the good one before it went through
  CHECK(t.take_all() == keepalive());  // published, the bad one not
  feed(a, keepalive());
  r = a.drain();
  CHECK(r.status == Status::Malformed);
  CHECK(r.messages == 0);
}

TEST_CASE("a bad marker is caught before 19 bytes have arrived") {
  TestSession t(4096);
  auto a = t.assembler();
  std::vector<uint8_t> garbage = {0xff, 0xff, 'G', 'E', 'T'};
  feed(a, garbage);
  CHECK(a.drain().status == Status::Malformed);
}

TEST_CASE("length 18 is malformed") {
  TestSession t(4096);
  auto a = t.assembler();
  auto m = message(19, bgp::kKeepalive);
  m[17] = 18;
  feed(a, m);
  auto r = a.drain();
  CHECK(r.status == Status::Malformed);
  CHECK(t.consumer().available() == 0);
}

TEST_CASE("length 4097 is malformed unless both OPENs announced extended messages") {
  TestSession t(128 * 1024);

  SECTION("no OPEN at all") {
    auto a = t.assembler();
    feed(a, update(4097), 0, 19);  // the header alone decides
    CHECK(a.drain().status == Status::Malformed);
  }
  SECTION("only the device announced it") {
    auto a = t.assembler();
    feed(a, open_message(65000, true));
    auto r = a.drain();
    REQUIRE(r.status == Status::Drained);
    REQUIRE(r.device_open);
    CHECK(r.device_open->extended_message);
    feed(a, update(4097), 0, 19);
    CHECK(a.drain().status == Status::Malformed);
  }
  SECTION("only the backend announced it") {
    auto a = t.assembler();
    feed(a, open_message(65000, false));
    REQUIRE(a.drain().status == Status::Drained);
    bgp::OpenInfo peer;
    peer.extended_message = true;
    a.peer_open(peer);
    feed(a, update(4097), 0, 19);
    CHECK(a.drain().status == Status::Malformed);
  }
}

TEST_CASE("65535-byte messages pass once both OPENs announced extended messages") {
  TestSession t(128 * 1024);
  auto a = t.assembler();
  auto open = open_message(4200000000u, true);
  feed(a, open);
  auto r = a.drain();
  REQUIRE(r.device_open);
  CHECK(r.device_open->asn == 4200000000u);
  CHECK(r.device_open->hold_time == 90);
  bgp::OpenInfo peer;
  peer.extended_message = true;
  a.peer_open(peer);
  CHECK(a.framing().max_length() == bgp::kMaxExtendedMessage);

  auto big = update(65535, 0x5a);
  size_t sent = 0;
  while (sent < big.size()) {  // arrives in reads of at most 7000 bytes
    sent += feed(a, big, sent, 7000);
    r = a.drain();
    REQUIRE(r.status == Status::Drained);
  }
  CHECK(r.messages == 1);
  CHECK(t.take_all() == concat({open, big}));
}

TEST_CASE("the device's OPEN is reported once") {
  TestSession t(4096);
  auto a = t.assembler();
  feed(a, concat({open_message(64512, false), keepalive()}));
  auto r = a.drain();
  REQUIRE(r.device_open);
  CHECK(r.device_open->asn == 64512);
  CHECK(r.device_open->router_id == (192u | 0u << 8 | 2u << 16 | 1u << 24));
  feed(a, open_message(64513, false));
  r = a.drain();
  CHECK_FALSE(r.device_open);
}

TEST_CASE("a restarted listener continues a half-staged message from the region") {
  TestSession t(4096);
  auto msg = update(1000, 0x77);
  {
    auto a = t.assembler();
    feed(a, msg, 0, 600);
    CHECK(a.drain().messages == 0);
  }  // killed: only the region remains
  auto b = t.assembler();
  REQUIRE(b.consistent());
  CHECK(b.staged() == 600);
  feed(b, msg, 600);
  auto r = b.drain();
  CHECK(r.messages == 1);
  CHECK(t.take_all() == msg);
}

TEST_CASE("bytes read but not recorded before a crash are adopted from the kernel's count") {
  TestSession t(4096);
  auto stream = concat({keepalive(), update(300, 0x12), keepalive()});
  {
    auto a = t.assembler();
    feed(a, stream, 0, 100);
    a.drain();
    // read() put 150 more bytes in the ring; the process died before
    // commit_read() recorded them.
    REQUIRE(place(a, stream, 100, 150) == 150);
  }
  auto b = t.assembler();
  CHECK(b.taken() == 100);
  // The kernel says 250 bytes were read in all.
  REQUIRE(b.adopt(250 - b.taken()));
  feed(b, stream, 250);
  auto r = b.drain();
  CHECK(r.status == Status::Drained);
  CHECK(t.take_all() == stream);
}

TEST_CASE("a restarted listener keeps the negotiated message size") {
  TestSession t(128 * 1024);
  {
    auto a = t.assembler();
    feed(a, open_message(65000, true));
    a.drain();
    bgp::OpenInfo peer;
    peer.extended_message = true;
    a.peer_open(peer);
  }
  auto b = t.assembler();
  CHECK(b.framing().max_length() == bgp::kMaxExtendedMessage);
  feed(b, update(5000));
  CHECK(b.drain().messages == 1);
}

TEST_CASE("records that cannot be right are refused") {
  TestSession t(4096);
  t.header.write_pos.store(500);
  t.header.read_pos.store(500);
  t.record->up_taken.store(400);  // fewer taken than published
  CHECK_FALSE(t.assembler().consistent());
  t.record->up_taken.store(500 + 5000);  // more staged than the ring holds
  CHECK_FALSE(t.assembler().consistent());
  t.record->up_taken.store(700);
  CHECK(t.assembler().consistent());
}

TEST_CASE("DownFraming finds the backend's OPEN however the bytes are cut") {
  auto open = open_message(65001, true);
  auto stream = concat({open, keepalive(), update(500), keepalive()});
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{19}, size_t{64}, stream.size()}) {
    auto record = std::make_unique<shm::ListenerRecord>();
    DownFraming f(record.get());
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

TEST_CASE("DownFraming continues across restarts at every byte") {
  auto open = open_message(65001, true);
  auto stream = concat({keepalive(), open, update(500), keepalive()});
  // Restart after every `chunk` bytes: each successor starts from the saved
  // state and must see exactly what one uninterrupted follower sees.
  for (size_t chunk : {size_t{1}, size_t{5}, size_t{19}, size_t{40}}) {
    auto record = std::make_unique<shm::ListenerRecord>();
    int opens = 0;
    uint64_t messages = 0;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      DownFraming f(record.get());
      REQUIRE(f.saved_position() == at);
      size_t n = std::min(chunk, stream.size() - at);
      if (auto r = f.feed(std::span<const uint8_t>(stream.data() + at, n))) {
        ++opens;
        CHECK(r->asn == 65001);
      }
      f.save(at + n);
      messages = f.messages();
    }
    INFO("chunk " << chunk);
    CHECK(opens == 1);
    CHECK(messages == 4);
  }
}

TEST_CASE("DownFraming stops following a stream that is not BGP") {
  auto record = std::make_unique<shm::ListenerRecord>();
  DownFraming f(record.get());
  std::vector<uint8_t> junk(100, 0x42);
  CHECK_FALSE(f.feed(junk));
  CHECK(f.lost());
  auto open = open_message(65001, true);
  CHECK_FALSE(f.feed(open));  // no longer looking
  CHECK(f.messages() == 0);
  f.save(200);
  DownFraming g(record.get());
  CHECK(g.lost());  // and a successor does not start again
}

// Found by tests/fuzz/fuzz_listener.cc (corpus/listener/corrupt-record): a
// saved state collecting the backend's OPEN with more body to come than
// peer_open holds made the restarted listener write past it.
TEST_CASE("a saved down state that would overrun peer_open is refused") {
  auto record = std::make_unique<shm::ListenerRecord>();
  DownFraming f(record.get());
  auto open = open_message(65001, true);
  CHECK_FALSE(f.feed(std::span<const uint8_t>(open.data(), 25)));  // collecting the OPEN
  f.save(25);
  uint32_t current = record->down_current.load() & 1;
  shm::DownFramingState& saved = record->down_state[current];
  REQUIRE((saved.flags & shm::kDownCollectingOpen) != 0);
  SECTION("consistent: carries on") {
    DownFraming g(record.get());
    CHECK_FALSE(g.lost());
    auto r = g.feed(std::span<const uint8_t>(open.data() + 25, open.size() - 25));
    REQUIRE(r);
    CHECK(r->asn == 65001);
  }
  SECTION("corrupted: stops following instead of writing past peer_open") {
    saved.body_left = 70000;
    DownFraming g(record.get());
    CHECK(g.lost());
    std::vector<uint8_t> more(8000, 0xab);
    CHECK_FALSE(g.feed(more));
  }
  SECTION("corrupted: collecting while a header arrives") {
    // The next header would set a body length of its own, and the OPEN
    // collected so far would grow past peer_open.
    saved.header_len = 3;
    saved.open_len = 4000;
    saved.body_left = 0;
    DownFraming g(record.get());
    CHECK(g.lost());
    CHECK_FALSE(g.feed(update(500)));
  }
}
