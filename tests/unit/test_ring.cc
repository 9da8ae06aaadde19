#include <catch2/catch.hpp>

#include <memory>
#include <numeric>
#include <vector>

#include "common/layout.h"
#include "common/ring.h"
#include "common/shm.h"

using namespace kbgp;

namespace {
struct TestRing {
  shm::RingHeader header{};
  std::vector<uint8_t> data = std::vector<uint8_t>(64);
  RingProducer producer() { return RingProducer(&header, data.data(), data.size()); }
  RingConsumer consumer() { return RingConsumer(&header, data.data(), data.size()); }
};

std::vector<uint8_t> bytes(size_t n, uint8_t start) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

std::vector<uint8_t> read_all(RingConsumer& c) {
  auto spans = c.readable();
  std::vector<uint8_t> out(spans.first.begin(), spans.first.end());
  out.insert(out.end(), spans.second.begin(), spans.second.end());
  return out;
}
}  // namespace

TEST_CASE("ring carries bytes across the wrap point in order") {
  TestRing r;
  auto p = r.producer();
  auto c = r.consumer();
  REQUIRE(p.write(bytes(50, 0)));
  c.consume(40);
  auto second = bytes(50, 100);  // wraps: 14 at the end, 36 at the start
  REQUIRE(p.write(second));
  CHECK(c.available() == 60);
  auto got = read_all(c);
  std::vector<uint8_t> want = bytes(10, 40);
  want.insert(want.end(), second.begin(), second.end());
  CHECK(got == want);
  std::vector<uint8_t> peeked(5);
  c.peek(12, peeked.data(), 5);
  CHECK(peeked == std::vector<uint8_t>{102, 103, 104, 105, 106});
}

TEST_CASE("a write that does not fit writes nothing") {
  TestRing r;
  auto p = r.producer();
  REQUIRE(p.write(bytes(60, 0)));
  CHECK_FALSE(p.write(bytes(5, 0)));
  CHECK(p.free_space() == 4);
  CHECK(p.write_some(bytes(10, 0)) == 4);
  CHECK(p.free_space() == 0);
}

TEST_CASE("a corrupt consumer position never makes the producer overrun") {
  TestRing r;
  auto p = r.producer();
  r.header.read_pos.store(1000);  // beyond write_pos: nonsense from the other side
  CHECK(p.free_space() == 0);
  CHECK_FALSE(p.write(bytes(1, 0)));
  r.header.read_pos.store(0);
  r.header.write_pos.store(5000);  // producer far ahead: consumer sees at most capacity
  auto c = r.consumer();
  CHECK(c.available() == 64);
}

TEST_CASE("close state is published to the consumer") {
  TestRing r;
  auto p = r.producer();
  auto c = r.consumer();
  CHECK(c.closed() == shm::RingClose::Open);
  p.write(bytes(3, 0));
  p.close(shm::RingClose::Eof);
  CHECK(c.closed() == shm::RingClose::Eof);
  CHECK(c.available() == 3);
  r.header.closed.store(77);  // unknown value reads as Abort
  CHECK(c.closed() == shm::RingClose::Abort);
}

TEST_CASE("session regions in a memfd validate and share memory between mappings") {
  auto fd = create_memfd("test-session", shm::kSessionRegionSize);
  REQUIRE(fd);
  auto a = SharedMapping::map(fd.get(), shm::kSessionRegionSize, true);
  auto b = SharedMapping::map(fd.get(), shm::kSessionRegionSize, true);
  REQUIRE(a);
  REQUIRE(b);
  uint8_t id[16] = {1, 2, 3};
  shm::init_session(a.as<shm::SessionRegion>(), 7, 3, id);
  CHECK(shm::valid_session(b.as<shm::SessionRegion>(), b.size()));
  auto prod = up_producer(a.as<shm::SessionRegion>());
  auto cons = up_consumer(b.as<shm::SessionRegion>());
  prod.write(bytes(100, 1));
  CHECK(cons.available() == 100);
  b.as<shm::SessionRegion>()->header.version = 99;
  CHECK_FALSE(shm::valid_session(a.as<shm::SessionRegion>(), a.size()));
  // The memfd is sealed: nobody can shrink it under another's mapping.
  CHECK(::ftruncate(fd.get(), 4096) != 0);
}

TEST_CASE("wake-up bitmap visits every marked slot once") {
  auto bitmap = std::make_unique<std::atomic<uint64_t>[]>(shm::kMaxSessions / 64);
  for (uint32_t s : {0u, 63u, 64u, 4095u}) shm::mark_pending(bitmap.get(), s);
  shm::mark_pending(bitmap.get(), 63);
  std::vector<uint32_t> seen;
  shm::drain_pending(bitmap.get(), [&](uint32_t s) { seen.push_back(s); });
  CHECK(seen == std::vector<uint32_t>{0, 63, 64, 4095});
  seen.clear();
  shm::drain_pending(bitmap.get(), [&](uint32_t s) { seen.push_back(s); });
  CHECK(seen.empty());
}

TEST_CASE("wake-up flags: a waiting consumer is woken once, a busy one not at all") {
  TestRing r;
  auto p = r.producer();
  auto c = r.consumer();
  // Busy consumer (never marked itself waiting): publishing wakes nobody.
  REQUIRE(p.write(bytes(4, 0)));
  CHECK_FALSE(p.consumer_wants_wake());
  c.consume(4);
  // It drained the ring and sleeps: nothing arrived since it looked.
  uint64_t seen = c.write_pos();
  CHECK_FALSE(c.wait_for_bytes(seen));
  REQUIRE(p.write(bytes(4, 4)));
  CHECK(p.consumer_wants_wake());        // woken...
  CHECK_FALSE(p.consumer_wants_wake());  // ...once per sleep
  // Bytes published between its look and its flag: it sees them itself.
  c.consume(4);
  seen = c.write_pos();
  REQUIRE(p.write(bytes(4, 8)));
  CHECK_FALSE(p.consumer_wants_wake());  // flag not set yet
  CHECK(c.wait_for_bytes(seen));         // so the recheck says: look again
}

TEST_CASE("wake-up flags: a producer waiting for space is woken when space is freed") {
  TestRing r;
  auto p = r.producer();
  auto c = r.consumer();
  REQUIRE(p.write(bytes(64, 0)));  // full
  c.consume(8);
  CHECK_FALSE(c.producer_wants_wake());  // the producer was not waiting
  REQUIRE(p.write(bytes(8, 0)));   // full again
  uint64_t seen = p.read_pos();
  CHECK_FALSE(p.wait_for_space(seen));
  c.consume(16);
  CHECK(c.producer_wants_wake());
  CHECK_FALSE(c.producer_wants_wake());
  // Space freed before the flag was set is seen by the producer itself.
  seen = p.read_pos();
  c.consume(16);
  CHECK(p.wait_for_space(seen));
}
