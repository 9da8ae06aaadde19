// The admin API's JSON documents against the vendor's documented shapes.
#include <catch2/catch.hpp>

#include <jansson.h>

#include <string>
#include <vector>

#include "admin/status_json.h"
#include "admin_fixture.h"

using namespace kbgp;
using namespace kbgp::admin;
using test::kSecond;
using test::kNowRealtime;

namespace {

std::vector<std::string> keys_in_order(const std::string& dumped) {
  // Re-parse with order preserved (jansson keeps insertion order).
  json_error_t err;
  json_t* v = json_loads(dumped.c_str(), 0, &err);
  REQUIRE(v);
  std::vector<std::string> keys;
  const char* key;
  json_t* value;
  json_object_foreach(v, key, value) keys.emplace_back(key);
  json_decref(v);
  return keys;
}

bool has_prefix(const std::vector<std::string>& keys, const std::vector<std::string>& prefix) {
  return keys.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), keys.begin());
}

json_t* field(json_t* obj, const char* key) {
  json_t* v = json_object_get(obj, key);
  INFO("key " << key);
  REQUIRE(v);
  return v;
}

}  // namespace

TEST_CASE("ControlRegion value-initialises to zero on the heap") {
  auto region = std::make_unique<shm::ControlRegion>();
  CHECK(region->counters.framing_errors.load() == 0);
  CHECK(region->sessions[shm::kMaxSessions - 1].state.load() == 0);
  CHECK(region->up_pending[0].load() == 0);
}

TEST_CASE("/admin/status has the vendor's fields, order and types") {
  auto region = test::make_region();
  test::add_session(*region, 3, "10.250.15.2:42875", kNowRealtime - 10 * kSecond);
  Json doc = status_json(*region, test::test_now());
  json_t* root = doc.get();
  std::string dumped = dump_json(root, false);

  CHECK(has_prefix(keys_in_order(dumped),
                   {"InstanceID", "ControlStream", "Heartbeats", "ActiveSessions", "Config"}));
  CHECK(std::string(json_string_value(field(root, "InstanceID"))) ==
        "9ef12a66-47ff-45b5-b56b-23a76941c655");

  json_t* cs = field(root, "ControlStream");
  CHECK(keys_in_order(dump_json(cs, false)) ==
        std::vector<std::string>{"Connected", "Since", "DurationMs", "MessagesRx"});
  CHECK(json_is_true(field(cs, "Connected")));
  CHECK(json_integer_value(field(cs, "DurationMs")) == 74925903);
  CHECK(json_integer_value(field(cs, "MessagesRx")) == 1311);
  std::string since = json_string_value(field(cs, "Since"));
  CHECK(since.size() == 30);  // 2023-07-24T16:37:51.158790049Z: nanoseconds, Z
  CHECK(since.back() == 'Z');

  json_t* hb = field(root, "Heartbeats");
  CHECK(keys_in_order(dump_json(hb, false)) ==
        std::vector<std::string>{"LastTx", "MsSinceLastTx", "LastTxRTTMs", "LastRx",
                                 "MsSinceLastRx"});
  CHECK(json_integer_value(field(hb, "MsSinceLastTx")) == 45902);
  CHECK(json_integer_value(field(hb, "MsSinceLastRx")) == 45867);
  CHECK(json_integer_value(field(hb, "LastTxRTTMs")) == 1);
  CHECK(json_is_string(field(hb, "LastTx")));

  CHECK(json_integer_value(field(root, "ActiveSessions")) == 1);

  json_t* cfg = field(root, "Config");
  CHECK(has_prefix(keys_in_order(dump_json(cfg, false)),
                   {"Listeners", "MD5Enabled", "MD5Interface", "ProxyTarget", "APIEmail",
                    "SiteID"}));
  json_t* listeners = field(cfg, "Listeners");
  REQUIRE(json_array_size(listeners) == 2);
  CHECK(std::string(json_string_value(json_array_get(listeners, 0))) == "0.0.0.0:179");
  CHECK(std::string(json_string_value(json_array_get(listeners, 1))) == "[::]:179");
  CHECK(json_is_true(field(cfg, "MD5Enabled")));
  CHECK(std::string(json_string_value(field(cfg, "MD5Interface"))) == "any");
  CHECK(std::string(json_string_value(field(cfg, "ProxyTarget"))) ==
        "grpc.api.our1.kentik.com:443");
  CHECK(std::string(json_string_value(field(cfg, "APIEmail"))) == "alistair+bgpproxy@kentik.com");
  CHECK(json_is_integer(field(cfg, "SiteID")));

  // Beyond the vendor.
  CHECK(std::string(json_string_value(field(root, "Version"))) == "0.1.0");
  json_t* workers = field(root, "Workers");
  for (const char* w : {"listener", "uplink", "admin"}) {
    json_t* entry = field(workers, w);
    CHECK(keys_in_order(dump_json(entry, false)) ==
          std::vector<std::string>{"PID", "State", "Restarts", "MsSinceHeartbeat"});
    CHECK(std::string(json_string_value(field(entry, "State"))) == "ready");
    CHECK(json_integer_value(field(entry, "MsSinceHeartbeat")) == 500);
  }
  CHECK(json_integer_value(field(field(workers, "uplink"), "Restarts")) == 2);
  CHECK(json_is_object(field(root, "Counters")));
}

TEST_CASE("a Control stream that never connected shows Go's zero time") {
  auto region = test::make_region();
  region->control.connected = 0;
  region->control.since_ns = 0;
  region->control.last_tx_ns = 0;
  region->control.last_rx_ns = 0;
  Json doc = status_json(*region, test::test_now());
  json_t* cs = json_object_get(doc.get(), "ControlStream");
  CHECK(json_is_false(json_object_get(cs, "Connected")));
  CHECK(std::string(json_string_value(json_object_get(cs, "Since"))) == "0001-01-01T00:00:00Z");
  CHECK(json_integer_value(json_object_get(cs, "DurationMs")) == 0);
  json_t* hb = json_object_get(doc.get(), "Heartbeats");
  CHECK(json_integer_value(json_object_get(hb, "MsSinceLastTx")) == 0);
}

TEST_CASE("/admin/sessions lists live sessions with the vendor's fields") {
  auto region = test::make_region();
  test::add_session(*region, 7, "10.250.15.2:42875", kNowRealtime - 16831 * int64_t{1'000'000});
  test::add_session(*region, 2, "[2001:db8::1]:179", kNowRealtime - 5 * kSecond);
  auto& closing = test::add_session(*region, 9, "10.0.0.9:5000", kNowRealtime - kSecond);
  closing.state = static_cast<uint32_t>(shm::SlotState::Closing);
  auto& freed = test::add_session(*region, 11, "10.0.0.11:5000", kNowRealtime);
  freed.state = static_cast<uint32_t>(shm::SlotState::Free);

  Json doc = sessions_json(*region, test::test_now());
  CHECK(keys_in_order(dump_json(doc.get(), false)) ==
        std::vector<std::string>{"NumSessions", "Sessions"});
  CHECK(json_integer_value(json_object_get(doc.get(), "NumSessions")) == 3);
  json_t* list = json_object_get(doc.get(), "Sessions");
  REQUIRE(json_array_size(list) == 3);
  json_t* first = json_array_get(list, 0);  // oldest first
  CHECK(has_prefix(keys_in_order(dump_json(first, false)),
                   {"Peer", "Time", "DurationMs", "Connected"}));
  CHECK(std::string(json_string_value(field(first, "Peer"))) == "10.250.15.2:42875");
  CHECK(json_integer_value(field(first, "DurationMs")) == 16831);
  CHECK(json_is_true(field(first, "Connected")));
  CHECK(json_integer_value(field(first, "DeviceASN")) == 64512);
  CHECK(std::string(json_string_value(field(first, "RouterID"))) == "192.0.2.1");
  CHECK(json_integer_value(field(first, "MessagesUp")) == 7);
  CHECK(json_integer_value(field(first, "BytesUp")) == 1234);
  CHECK(json_integer_value(field(first, "BytesDown")) == 567);
  CHECK(std::string(json_string_value(field(first, "SessionID"))).size() == 36);
  CHECK(std::string(json_string_value(field(json_array_get(list, 1), "Peer"))) ==
        "[2001:db8::1]:179");
  CHECK(std::string(json_string_value(field(json_array_get(list, 2), "State"))) == "closing");
}

TEST_CASE("/admin/sessions with no session has an empty list") {
  auto region = test::make_region();
  Json doc = sessions_json(*region, test::test_now());
  CHECK(dump_json(doc.get(), false) == R"({"NumSessions":0,"Sessions":[]})");
}

TEST_CASE("/admin/sessions/<ip> has the vendor's fields and the ServerMetadata object") {
  auto region = test::make_region();
  auto& s = test::add_session(*region, 5, "10.250.15.2:44507",
                              kNowRealtime - 21881 * int64_t{1'000'000});
  test::set_metadata(s, R"({"content-type":["application/grpc"],"counter-up":["0"]})");
  Json doc = session_detail_json(*region, *Endpoint::parse_address("10.250.15.2"), test::test_now());
  REQUIRE(doc);
  CHECK(has_prefix(keys_in_order(dump_json(doc.get(), false)),
                   {"Peer", "ConnectedSince", "ConnectedDurationMs", "SessionID",
                    "ServerMetadata"}));
  CHECK(std::string(json_string_value(field(doc.get(), "Peer"))) == "10.250.15.2:44507");
  CHECK(json_integer_value(field(doc.get(), "ConnectedDurationMs")) == 21881);
  json_t* md = field(doc.get(), "ServerMetadata");
  REQUIRE(json_is_object(md));
  json_t* ct = field(md, "content-type");
  REQUIRE(json_is_array(ct));
  CHECK(std::string(json_string_value(json_array_get(ct, 0))) == "application/grpc");
  CHECK(json_integer_value(field(doc.get(), "DeviceASN")) == 64512);

  CHECK_FALSE(session_detail_json(*region, *Endpoint::parse_address("10.250.15.3"),
                                  test::test_now()));
}

TEST_CASE("a v4-mapped device address is found by its IPv4 form") {
  auto region = test::make_region();
  test::add_session(*region, 1, "[::ffff:10.1.2.3]:5000", kNowRealtime);
  Json doc = session_detail_json(*region, *Endpoint::parse_address("10.1.2.3"), test::test_now());
  REQUIRE(doc);
  CHECK(std::string(json_string_value(field(doc.get(), "Peer"))) == "10.1.2.3:5000");
}

TEST_CASE("ServerMetadata being written, or not JSON, renders as an empty object") {
  auto region = test::make_region();
  auto& s = test::add_session(*region, 5, "10.250.15.2:44507", kNowRealtime);
  auto ip = *Endpoint::parse_address("10.250.15.2");
  SECTION("writer in the middle (odd sequence)") {
    test::set_metadata(s, R"({"a":["b"]})");
    s.metadata_seq = s.metadata_seq + 1;
    Json doc = session_detail_json(*region, ip, test::test_now());
    CHECK(dump_json(json_object_get(doc.get(), "ServerMetadata"), false) == "{}");
  }
  SECTION("garbage") {
    test::set_metadata(s, "{not json");
    Json doc = session_detail_json(*region, ip, test::test_now());
    CHECK(dump_json(json_object_get(doc.get(), "ServerMetadata"), false) == "{}");
  }
  SECTION("never written") {
    Json doc = session_detail_json(*region, ip, test::test_now());
    CHECK(dump_json(json_object_get(doc.get(), "ServerMetadata"), false) == "{}");
  }
}

TEST_CASE("strings from shared memory are bounded and made valid UTF-8") {
  auto region = test::make_region();
  std::memset(region->config.api_email, 'x', sizeof region->config.api_email);  // no NUL
  region->config.target[0] = static_cast<char>(0xff);
  region->config.target[1] = 0;
  region->config.listener_count = 1000;  // more than the array holds
  Json doc = status_json(*region, test::test_now());
  json_t* cfg = json_object_get(doc.get(), "Config");
  CHECK(std::string(json_string_value(json_object_get(cfg, "APIEmail"))).size() ==
        sizeof region->config.api_email);
  CHECK(std::string(json_string_value(json_object_get(cfg, "ProxyTarget"))) == "?");
  CHECK(json_array_size(json_object_get(cfg, "Listeners")) == shm::kMaxListeners);
}

TEST_CASE("?pretty output is indented, the default is compact") {
  auto region = test::make_region();
  Json doc = sessions_json(*region, test::test_now());
  std::string compact = dump_json(doc.get(), false);
  std::string pretty = dump_json(doc.get(), true);
  CHECK(compact.find('\n') == std::string::npos);
  CHECK(pretty.find("\n  \"NumSessions\": 0") != std::string::npos);
}

TEST_CASE("time_text renders nanoseconds in UTC") {
  CHECK(time_text(kNowRealtime) == "2023-07-25T17:01:25.409183151Z");
  CHECK(time_text(0) == "0001-01-01T00:00:00Z");
}
