// Consistent reads of session slots and of the ServerMetadata seqlock.
#include <catch2/catch.hpp>

#include "admin/snapshot.h"
#include "admin_fixture.h"

using namespace kbgp;
using namespace kbgp::admin;
using test::kNowRealtime;

TEST_CASE("an Active slot is copied whole") {
  auto region = test::make_region();
  auto& slot = test::add_session(*region, 4, "10.0.0.1:179", kNowRealtime);
  SessionSnapshot s;
  REQUIRE(read_session(slot, 4, &s));
  CHECK(s.slot == 4);
  CHECK(s.generation == 1);
  CHECK(s.device.to_string() == "10.0.0.1:179");
  CHECK(s.bytes_up == 1234);
  CHECK(s.peer_asn == 64512);
}

TEST_CASE("a Free slot is skipped") {
  auto region = test::make_region();
  SessionSnapshot s;
  CHECK_FALSE(read_session(region->sessions[0], 0, &s));
}

TEST_CASE("a slot reused while being copied is skipped") {
  auto region = test::make_region();
  auto& slot = test::add_session(*region, 4, "10.0.0.1:179", kNowRealtime);
  SessionSnapshot s;
  s.slot = 999;
  CHECK_FALSE(read_session(slot, 4, &s, [&] {
    // The supervisor frees and reuses the slot under the reader.
    slot.state = static_cast<uint32_t>(shm::SlotState::Free);
    test::add_session(*region, 4, "10.9.9.9:179", kNowRealtime);
  }));
  CHECK(s.slot == 999);  // output untouched
  // The next read sees the new session consistently.
  REQUIRE(read_session(slot, 4, &s));
  CHECK(s.device.to_string() == "10.9.9.9:179");
  CHECK(s.generation == 2);
}

TEST_CASE("a slot whose state changes while being copied is skipped") {
  auto region = test::make_region();
  auto& slot = test::add_session(*region, 4, "10.0.0.1:179", kNowRealtime);
  SessionSnapshot s;
  CHECK_FALSE(read_session(slot, 4, &s, [&] {
    slot.state = static_cast<uint32_t>(shm::SlotState::Closing);
  }));
  REQUIRE(read_session(slot, 4, &s));
  CHECK(s.state == shm::SlotState::Closing);
}

TEST_CASE("read_sessions returns live sessions oldest first") {
  auto region = test::make_region();
  test::add_session(*region, 10, "10.0.0.10:1", kNowRealtime - 1);
  test::add_session(*region, 20, "10.0.0.20:1", kNowRealtime - 3);
  test::add_session(*region, 30, "10.0.0.30:1", kNowRealtime - 2);
  auto all = read_sessions(*region);
  REQUIRE(all.size() == 3);
  CHECK(all[0].slot == 20);
  CHECK(all[1].slot == 30);
  CHECK(all[2].slot == 10);
}

TEST_CASE("metadata is read under its seqlock with bounded retries") {
  auto region = test::make_region();
  auto& slot = test::add_session(*region, 4, "10.0.0.1:179", kNowRealtime);
  test::set_metadata(slot, R"({"x":["1"]})");
  test::copy_text(slot.device_name, sizeof slot.device_name, "router-1");
  auto m = read_metadata(slot, slot.generation);
  REQUIRE(m);
  CHECK(m->json == R"({"x":["1"]})");
  CHECK(m->device_name == "router-1");

  slot.metadata_seq = slot.metadata_seq + 1;  // a writer never finishes
  CHECK_FALSE(read_metadata(slot, slot.generation, 5));
  slot.metadata_seq = slot.metadata_seq + 1;
  CHECK(read_metadata(slot, slot.generation));
  CHECK_FALSE(read_metadata(slot, slot.generation + 1));  // the slot moved on

  slot.metadata_len = 100000;  // corrupt length: clamped to the buffer
  m = read_metadata(slot, slot.generation);
  REQUIRE(m);
  CHECK(m->json == R"({"x":["1"]})");
}
