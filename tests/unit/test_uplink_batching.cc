#include <catch2/catch.hpp>

#include <vector>

#include "common/layout.h"
#include "common/ring.h"
#include "uplink/batching.h"

using namespace kbgp;
using namespace kbgp::uplink;

namespace {
struct TestRing {
  explicit TestRing(size_t capacity) : data(capacity) {}
  shm::RingHeader header{};
  std::vector<uint8_t> data;
  RingProducer producer() { return RingProducer(&header, data.data(), data.size()); }
  RingConsumer consumer() { return RingConsumer(&header, data.data(), data.size()); }
};

// A BGP message of `length` bytes with the given type; the body is a
// counting pattern so misplaced bytes show.
std::vector<uint8_t> message(size_t length, uint8_t type = 2, uint8_t seed = 0) {
  std::vector<uint8_t> m(length);
  for (size_t i = 0; i < 16; ++i) m[i] = 0xff;
  m[16] = static_cast<uint8_t>(length >> 8);
  m[17] = static_cast<uint8_t>(length & 0xff);
  m[18] = type;
  for (size_t i = 19; i < length; ++i) m[i] = static_cast<uint8_t>(seed + i);
  return m;
}

void put(RingProducer& p, const std::vector<uint8_t>& bytes) { REQUIRE(p.write(bytes)); }
}  // namespace

TEST_CASE("batching an empty ring") {
  TestRing r(256);
  auto plan = plan_batch(r.consumer());
  CHECK(plan.status == BatchPlan::Status::Empty);
  CHECK(plan.bytes == 0);
}

TEST_CASE("batching takes only whole messages") {
  TestRing r(256);
  auto p = r.producer();
  auto c = r.consumer();
  put(p, message(19, 4));
  put(p, message(40));
  auto partial = message(30);
  REQUIRE(p.write({partial.data(), 25}));  // header and part of the body
  auto plan = plan_batch(c);
  REQUIRE(plan.status == BatchPlan::Status::Ready);
  CHECK(plan.bytes == 59);
  CHECK(plan.messages == 2);
  c.consume(plan.bytes);
  plan = plan_batch(c);
  CHECK(plan.status == BatchPlan::Status::Incomplete);
  REQUIRE(p.write({partial.data() + 25, 5}));
  plan = plan_batch(c);
  REQUIRE(plan.status == BatchPlan::Status::Ready);
  CHECK(plan.bytes == 30);
}

TEST_CASE("batching with fewer bytes than a header is incomplete") {
  TestRing r(256);
  auto p = r.producer();
  auto m = message(19, 4);
  REQUIRE(p.write({m.data(), 18}));
  CHECK(plan_batch(r.consumer()).status == BatchPlan::Status::Incomplete);
}

TEST_CASE("batching reads headers and copies bytes across the wrap point") {
  TestRing r(128);
  auto p = r.producer();
  auto c = r.consumer();
  // Move the positions so the next message's header straddles the end.
  put(p, message(100));
  c.consume(100);
  auto first = message(45, 2, 7);  // bytes 100..144: header split at 128
  auto second = message(50, 2, 9);
  put(p, first);
  put(p, second);
  auto plan = plan_batch(c);
  REQUIRE(plan.status == BatchPlan::Status::Ready);
  CHECK(plan.messages == 2);
  CHECK(plan.bytes == 95);
  // Copied out as the uplink does (Session::fill_from_up).
  std::vector<uint8_t> out(plan.bytes);
  c.peek(0, out.data(), out.size());
  std::vector<uint8_t> expected(first);
  expected.insert(expected.end(), second.begin(), second.end());
  CHECK(out == expected);
}

TEST_CASE("a header split exactly at the length field across the wrap") {
  TestRing r(128);
  auto p = r.producer();
  auto c = r.consumer();
  put(p, message(111));  // the next header starts at 111: bytes 16..17 sit at 127 and 0
  c.consume(111);
  auto m = message(60);
  put(p, m);
  auto plan = plan_batch(c);
  REQUIRE(plan.status == BatchPlan::Status::Ready);
  CHECK(plan.bytes == 60);
}

TEST_CASE("batching stops at the size limit but always takes one message") {
  TestRing r(1024);
  auto p = r.producer();
  auto c = r.consumer();
  put(p, message(300));
  put(p, message(300));
  put(p, message(300));
  auto plan = plan_batch(c, 700);
  REQUIRE(plan.status == BatchPlan::Status::Ready);
  CHECK(plan.messages == 2);
  CHECK(plan.bytes == 600);
  // A message bigger than the limit still goes, alone.
  plan = plan_batch(c, 100);
  REQUIRE(plan.status == BatchPlan::Status::Ready);
  CHECK(plan.messages == 1);
  CHECK(plan.bytes == 300);
}

TEST_CASE("batching a real-sized ring up to the batch limit") {
  TestRing r(shm::kRingCapacity);
  auto p = r.producer();
  auto c = r.consumer();
  size_t total = 0;
  while (total + 4096 <= shm::kRingCapacity) {
    put(p, message(4096));
    total += 4096;
  }
  auto plan = plan_batch(c);
  REQUIRE(plan.status == BatchPlan::Status::Ready);
  CHECK(plan.bytes == kMaxBatchBytes / 4096 * 4096);
  CHECK(plan.bytes <= kMaxBatchBytes);
  CHECK(plan.messages == kMaxBatchBytes / 4096);
  // An extended message of the maximum length alone.
  c.consume(c.available());
  put(p, message(65535));
  plan = plan_batch(c);
  REQUIRE(plan.status == BatchPlan::Status::Ready);
  CHECK(plan.bytes == 65535);
}

TEST_CASE("batching refuses a length below the header size") {
  TestRing r(256);
  auto p = r.producer();
  auto m = message(19, 4);
  m[17] = 18;
  put(p, m);
  auto plan = plan_batch(r.consumer());
  CHECK(plan.status == BatchPlan::Status::Corrupt);
  CHECK(std::string(plan.error).find("length") != std::string::npos);
}

TEST_CASE("batching refuses a broken marker after good messages") {
  TestRing r(256);
  auto p = r.producer();
  put(p, message(19, 4));
  auto bad = message(19, 4);
  bad[3] = 0;
  put(p, bad);
  auto plan = plan_batch(r.consumer());
  // The good message could go, but the stream is desynchronised: refuse.
  CHECK(plan.status == BatchPlan::Status::Corrupt);
}

TEST_CASE("batching never trusts a corrupt producer position") {
  TestRing r(128);
  auto c = r.consumer();
  // write_pos far beyond read_pos + capacity: available() is clamped.
  r.header.write_pos.store(1'000'000);
  auto plan = plan_batch(c);
  CHECK(plan.status == BatchPlan::Status::Corrupt);  // zeroed data: no marker
  for (auto& b : r.data) b = 0xff;                    // length field 0xffff
  plan = plan_batch(c);
  CHECK(plan.status == BatchPlan::Status::Incomplete);
  CHECK(plan.bytes == 0);
}
