// The admin's view of TCP-MD5: the per-session MD5 flag, the counters in
// /admin/status and /metrics -- and no key anywhere (the control region
// has no place for one).
#include <catch2/catch.hpp>
#include <string>

#include "admin/metrics_text.h"
#include "admin/status_json.h"
#include "admin_fixture.h"

using namespace kbgp;
using namespace kbgp::admin;

TEST_CASE("admin: MD5 per session, MD5 counters in status and metrics", "[admin][md5]") {
  auto region = test::make_region();
  auto& signed_slot =
      test::add_session(*region, 3, "192.0.2.3:40000", test::kNowRealtime - test::kSecond);
  signed_slot.md5 = 1;
  test::add_session(*region, 4, "192.0.2.4:40000", test::kNowRealtime - test::kSecond, 0x22);
  auto& c = region->counters;
  c.md5_syns_seen = 11;
  c.md5_lookups = 5;
  c.md5_keys_installed = 4;
  c.md5_keys = 3;
  c.kernel_md5_unexpected = 9;
  c.kernel_md5_failure = 2;

  std::string sessions = dump_json(sessions_json(*region, test::test_now()).get(), false);
  CHECK_THAT(sessions, Catch::Contains(R"("Peer":"192.0.2.3:40000")"));
  auto at3 = sessions.find("192.0.2.3:40000"), at4 = sessions.find("192.0.2.4:40000");
  REQUIRE(at3 != std::string::npos);
  REQUIRE(at4 != std::string::npos);
  CHECK(sessions.find(R"("MD5":true)", at3) < at4);
  CHECK(sessions.find(R"("MD5":false)", at4) != std::string::npos);
  std::string detail = dump_json(
      session_detail_json(*region, *Endpoint::parse_address("192.0.2.3"), test::test_now()).get(),
      false);
  CHECK_THAT(detail, Catch::Contains(R"("MD5":true)"));

  std::string status = dump_json(status_json(*region, test::test_now()).get(), false);
  CHECK_THAT(
      status,
      Catch::Contains(R"("MD5Enabled":true)") && Catch::Contains(R"("MD5Interface":"any")") &&
          Catch::Contains(R"("MD5SynsSeen":11)") && Catch::Contains(R"("MD5Lookups":5)") &&
          Catch::Contains(R"("MD5Keys":3)") && Catch::Contains(R"("KernelTCPMD5Unexpected":9)") &&
          Catch::Contains(R"("KernelTCPMD5Failure":2)"));

  std::string metrics = metrics_text(*region, test::test_now());
  CHECK_THAT(metrics,
             Catch::Contains("\nkbgp_md5_syns_seen_total 11\n") &&
                 Catch::Contains("\nkbgp_md5_lookups_total 5\n") &&
                 Catch::Contains("\nkbgp_md5_keys_installed_total 4\n") &&
                 Catch::Contains("\nkbgp_md5_keys 3\n") &&
                 Catch::Contains("kbgp_kernel_tcp_md5_drops_total{reason=\"unexpected\"} 9\n") &&
                 Catch::Contains("kbgp_kernel_tcp_md5_drops_total{reason=\"failure\"} 2\n") &&
                 Catch::Contains("# TYPE kbgp_md5_keys gauge\n"));
}
