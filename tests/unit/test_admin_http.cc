// Health statuses and HTTP routing, without sockets.
#include <catch2/catch.hpp>

#include <jansson.h>

#include "admin/health.h"
#include "admin/router.h"
#include "admin_fixture.h"

using namespace kbgp;
using namespace kbgp::admin;
using test::kSecond;
using test::kNowMonotonic;
using test::kNowRealtime;

namespace {

std::string status_after(HealthMonitor& h, const shm::ControlRegion& r, int64_t plus_ns = 0) {
  h.evaluate(r, test::test_now(plus_ns));
  return h.report(test::test_now(plus_ns)).status;
}

std::string json_field(const std::string& body, const char* key) {
  json_error_t err;
  json_t* v = json_loads(body.c_str(), 0, &err);
  REQUIRE(v);
  json_t* f = json_object_get(v, key);
  std::string out = json_is_string(f) ? json_string_value(f) : "";
  json_decref(v);
  return out;
}

}  // namespace

TEST_CASE("health: ok when workers beat and the Control stream is up") {
  auto region = test::make_region();
  HealthMonitor h(kNowMonotonic - kSecond);
  CHECK(status_after(h, *region) == "ok");
}

TEST_CASE("health: initializing until the uplink and Control stream were up once") {
  auto region = test::make_region();
  region->control.connected = 0;
  HealthMonitor h(kNowMonotonic);
  CHECK(status_after(h, *region) == "initializing");
  CHECK(status_after(h, *region, 29 * kSecond) == "initializing");
  SECTION("never up within the grace period: failing") {
    CHECK(status_after(h, *region, 31 * kSecond) == "failing");
  }
  SECTION("up once, then down: failing at once") {
    region->control.connected = 1;
    region->control.since_ns = kNowRealtime;
    CHECK(status_after(h, *region, kSecond) == "ok");
    region->control.connected = 0;
    CHECK(status_after(h, *region, 2 * kSecond) == "failing");
  }
}

TEST_CASE("health: a stale or missing worker heartbeat fails") {
  auto region = test::make_region();
  HealthMonitor h(kNowMonotonic - 60 * kSecond);
  SECTION("listener heartbeat 6 s old") {
    region->workers[0].heartbeat_mono_ns = kNowMonotonic - 6 * kSecond;
    CHECK(status_after(h, *region) == "failing");
    auto report = h.report(test::test_now());
    CHECK(report.checks[0].name == "listener");
    CHECK_FALSE(report.checks[0].ok);
  }
  SECTION("uplink not ready") {
    region->workers[1].state = static_cast<uint32_t>(shm::WorkerState::Starting);
    CHECK(status_after(h, *region) == "failing");
  }
}

TEST_CASE("health: a silent Control stream is a timeout") {
  auto region = test::make_region();
  HealthMonitor h(kNowMonotonic - 600 * kSecond);
  region->control.since_ns = kNowRealtime - 300 * kSecond;
  region->control.last_rx_ns = kNowRealtime - 121 * kSecond;
  // The first evaluation, 200 s ago, noted the message count.
  CHECK(status_after(h, *region, -200 * kSecond) == "ok");
  CHECK(status_after(h, *region) == "timeout");
  region->control.messages_rx = region->control.messages_rx + 1;  // something arrived
  CHECK(status_after(h, *region, kSecond) == "ok");
}

TEST_CASE("health: an old evaluation is an old_result") {
  auto region = test::make_region();
  HealthMonitor h(kNowMonotonic - 60 * kSecond);
  h.evaluate(*region, test::test_now());
  CHECK(std::string(h.report(test::test_now(6 * kSecond)).status) == "old_result");
}

TEST_CASE("routing: the five endpoints, 404, 405, 400") {
  auto region = test::make_region();
  test::add_session(*region, 1, "10.250.15.2:44507", kNowRealtime);
  HealthMonitor h(kNowMonotonic - kSecond);
  h.evaluate(*region, test::test_now());
  auto get = [&](const std::string& target, const std::string& method = "GET",
                 bool body = false) {
    return route({method, target, body}, *region, h, test::test_now());
  };

  auto hc = get("/hc");
  CHECK(hc.code == 200);
  CHECK(hc.content_type == "application/json");
  CHECK(json_field(hc.body, "status") == "ok");
  CHECK(json_field(hc.body, "timestamp") == "2023-07-25T17:01:25.409183151Z");

  CHECK(get("/admin/status").code == 200);
  CHECK(get("/admin/status/").code == 200);
  CHECK(get("/admin/sessions").code == 200);
  CHECK(get("/admin/sessions/10.250.15.2").code == 200);
  CHECK(get("/admin/sessions/%31%30.250.15.2").code == 200);  // percent-decoded
  CHECK(get("/admin/sessions/10.250.15.9").code == 404);
  CHECK(get("/admin/sessions/[::1]").code == 404);
  auto bad_ip = get("/admin/sessions/not-an-ip");
  CHECK(bad_ip.code == 400);
  CHECK_FALSE(json_field(bad_ip.body, "error").empty());

  auto metrics = get("/metrics");
  CHECK(metrics.code == 200);
  CHECK(metrics.content_type.rfind("text/plain; version=0.0.4", 0) == 0);

  auto missing = get("/nope");
  CHECK(missing.code == 404);
  CHECK(missing.content_type == "application/json");
  CHECK_FALSE(json_field(missing.body, "error").empty());

  auto post = get("/admin/status", "POST");
  CHECK(post.code == 405);
  CHECK(post.headers.size() == 1);
  CHECK(post.headers[0].first == "Allow");
  CHECK_FALSE(json_field(post.body, "error").empty());
  CHECK(get("/nope", "DELETE").code == 404);
  CHECK(get("/hc", "HEAD").code == 200);

  CHECK(get("/admin/status", "GET", true).code == 400);
  CHECK(get("/admin/%zz").code == 400);
  CHECK(get("/admin/%00").code == 400);
  CHECK(get("/admin/%4").code == 400);
  CHECK(get("*").code == 400);
  CHECK(get("http://127.0.0.1:20920/hc").code == 200);
}

TEST_CASE("routing: ?pretty indents JSON") {
  auto region = test::make_region();
  HealthMonitor h(kNowMonotonic - kSecond);
  h.evaluate(*region, test::test_now());
  auto compact = route({"GET", "/admin/status", false}, *region, h, test::test_now());
  auto pretty = route({"GET", "/admin/status?pretty", false}, *region, h, test::test_now());
  auto pretty_true = route({"GET", "/admin/status?x=1&pretty=true", false}, *region, h,
                           test::test_now());
  auto not_pretty = route({"GET", "/admin/status?pretty=0", false}, *region, h, test::test_now());
  CHECK(compact.body.find('\n') == std::string::npos);
  CHECK(pretty.body.find("\n  \"InstanceID\": ") != std::string::npos);
  CHECK(pretty_true.body == pretty.body);
  CHECK(not_pretty.body == compact.body);
  CHECK(wants_pretty("pretty"));
  CHECK_FALSE(wants_pretty("prettyx"));
  CHECK_FALSE(wants_pretty(""));
}

TEST_CASE("routing: /hc answers 503 while not ok") {
  auto region = test::make_region();
  region->control.connected = 0;
  HealthMonitor h(kNowMonotonic);
  h.evaluate(*region, test::test_now());
  auto hc = route({"GET", "/hc", false}, *region, h, test::test_now());
  CHECK(hc.code == 503);
  CHECK(json_field(hc.body, "status") == "initializing");
}
