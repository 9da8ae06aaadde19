// The supervisor's deny-list as the admin sees it: published into the
// ControlRegion (supervisor/deny_view), read back under its seqlock
// (admin/snapshot) and shown in /admin/status and /metrics.
#include <catch2/catch.hpp>

#include <jansson.h>

#include <string>

#include "admin/metrics_text.h"
#include "admin/snapshot.h"
#include "admin/status_json.h"
#include "admin_fixture.h"
#include "supervisor/deny_list.h"
#include "supervisor/deny_view.h"

using namespace kbgp;
using namespace kbgp::admin;
using test::kNowMonotonic;
using test::kNowRealtime;
using test::kSecond;

namespace {

Endpoint address(const std::string& text) { return *Endpoint::parse_address(text); }

}  // namespace

TEST_CASE("the published deny-list reads back latest deadline first, in realtime") {
  auto region = test::make_region();
  DenyList list;
  REQUIRE(list.add(address("127.0.0.9"), 1200, kNowMonotonic - 100 * kSecond));
  REQUIRE(list.add(address("2001:db8::7"), 60, kNowMonotonic));
  REQUIRE(list.add(address("::ffff:10.1.2.3"), 30, kNowMonotonic));  // v4-mapped
  publish_deny_list(list, &region->deny_list, kNowMonotonic, kNowRealtime);

  CHECK(region->deny_list.seq.load() % 2 == 0);
  auto deny = read_deny_list(region->deny_list);
  REQUIRE(deny);
  CHECK(deny->total == 3);
  REQUIRE(deny->entries.size() == 3);
  CHECK(deny->entries[0].device.address_string() == "127.0.0.9");
  CHECK(deny->entries[0].until_ns == kNowRealtime + 1100 * kSecond);
  CHECK(deny->entries[1].device.address_string() == "2001:db8::7");
  CHECK(deny->entries[2].device.address_string() == "10.1.2.3");
  CHECK(deny->entries[2].until_ns == kNowRealtime + 30 * kSecond);
}

TEST_CASE("a lifted or expired deny leaves the published list") {
  auto region = test::make_region();
  DenyList list;
  REQUIRE(list.add(address("127.0.0.9"), 10, kNowMonotonic));
  REQUIRE(list.add(address("127.0.0.10"), 20, kNowMonotonic));
  publish_deny_list(list, &region->deny_list, kNowMonotonic, kNowRealtime);
  REQUIRE(read_deny_list(region->deny_list)->total == 2);

  CHECK(list.remove(address("127.0.0.10")));
  CHECK_FALSE(list.remove(address("127.0.0.10")));
  publish_deny_list(list, &region->deny_list, kNowMonotonic, kNowRealtime);
  auto deny = read_deny_list(region->deny_list);
  REQUIRE(deny->entries.size() == 1);
  CHECK(deny->entries[0].device.address_string() == "127.0.0.9");

  // Past its deadline but not yet swept: not shown.
  publish_deny_list(list, &region->deny_list, kNowMonotonic + 11 * kSecond,
                    kNowRealtime + 11 * kSecond);
  CHECK(read_deny_list(region->deny_list)->entries.empty());
}

TEST_CASE("more denies than the view holds: the latest are shown, the total is whole") {
  auto region = test::make_region();
  DenyList list;
  const uint32_t n = shm::kDenyViewEntries + 44;
  for (uint32_t i = 0; i < n; ++i) {
    Endpoint e = address("10.0.0.0");
    e.addr[2] = static_cast<uint8_t>(i >> 8);
    e.addr[3] = static_cast<uint8_t>(i);
    REQUIRE(list.add(e, 100 + i, kNowMonotonic));
  }
  publish_deny_list(list, &region->deny_list, kNowMonotonic, kNowRealtime);
  auto deny = read_deny_list(region->deny_list);
  REQUIRE(deny);
  CHECK(deny->total == n);
  REQUIRE(deny->entries.size() == shm::kDenyViewEntries);
  CHECK(deny->entries.front().until_ns == kNowRealtime + (100 + n - 1) * kSecond);
  CHECK(deny->entries.back().until_ns == kNowRealtime + (100 + 44) * kSecond);
}

TEST_CASE("a deny-list being written is not read") {
  auto region = test::make_region();
  region->deny_list.seq = 1;  // a writer is inside
  CHECK_FALSE(read_deny_list(region->deny_list, 4));
}

TEST_CASE("/admin/status shows the deny-list with Device, Until and RemainingMs") {
  auto region = test::make_region();
  DenyList list;
  REQUIRE(list.add(address("127.0.0.9"), 1200, kNowMonotonic));
  publish_deny_list(list, &region->deny_list, kNowMonotonic, kNowRealtime);
  region->counters.deny_list_size = 1;

  Json doc = status_json(*region, test::test_now(250'000'000));
  json_t* deny = json_object_get(doc.get(), "DenyList");
  REQUIRE(json_is_array(deny));
  REQUIRE(json_array_size(deny) == 1);
  json_t* entry = json_array_get(deny, 0);
  CHECK(std::string(json_string_value(json_object_get(entry, "Device"))) == "127.0.0.9");
  CHECK(std::string(json_string_value(json_object_get(entry, "Until"))) ==
        time_text(kNowRealtime + 1200 * kSecond));
  CHECK(json_integer_value(json_object_get(entry, "RemainingMs")) == 1199750);

  std::string metrics = metrics_text(*region, test::test_now());
  CHECK(metrics.find("\nkbgp_deny_list_size 1\n") != std::string::npos);
}

TEST_CASE("/admin/status with no deny has an empty DenyList") {
  auto region = test::make_region();
  Json doc = status_json(*region, test::test_now());
  json_t* deny = json_object_get(doc.get(), "DenyList");
  REQUIRE(json_is_array(deny));
  CHECK(json_array_size(deny) == 0);
}

TEST_CASE("sessions are listed from the slots marked in use only") {
  auto region = test::make_region();
  test::add_session(*region, 5, "10.0.0.5:179", kNowRealtime - 5 * kSecond);
  test::add_session(*region, 4000, "10.0.0.6:179", kNowRealtime - 4 * kSecond);
  // A slot that looks Active but is not marked in use is not visited.
  auto& stray = region->sessions[77];
  stray.device = *Endpoint::parse("10.0.0.77:179");
  stray.state = static_cast<uint32_t>(shm::SlotState::Active);
  auto sessions = read_sessions(*region);
  REQUIRE(sessions.size() == 2);
  CHECK(sessions[0].slot == 5);
  CHECK(sessions[1].slot == 4000);
}
