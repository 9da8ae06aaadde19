#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include <jansson.h>

#include "uplink/metadata.h"

using namespace kbgp;
using namespace kbgp::uplink;

namespace {
AgentIdentity agent() {
  AgentIdentity a;
  a.email = "ops@example.com";
  a.token = "s3cr3t-T0KEN";
  a.site_id = 42;
  a.version = "0.1.0";
  a.instance = "64bae291-66ea-4910-a2a2-92eb99224a28";
  return a;
}

DataCallInfo call(const std::vector<KeyValues>* control) {
  DataCallInfo c;
  c.device = *Endpoint::parse("[::ffff:10.250.15.1]:65411");
  c.local = *Endpoint::parse("10.250.12.10:179");
  c.session_id = "cbce1788-bb34-4c2c-8056-5b3224d4e893";
  c.counter_up = 3;
  c.counter_down = 5;
  c.control_metadata = control;
  return c;
}

std::vector<std::string> values(const Metadata& md, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& [k, v] : md)
    if (k == key) out.push_back(v);
  return out;
}
}  // namespace

TEST_CASE("common metadata carries both token keys, sid, version, instance") {
  Metadata md = common_metadata(agent());
  CHECK(values(md, "x-ch-auth-email") == std::vector<std::string>{"ops@example.com"});
  CHECK(values(md, "x-ch-auth-token") == std::vector<std::string>{"s3cr3t-T0KEN"});
  CHECK(values(md, "x-ch-auth-api-token") == std::vector<std::string>{"s3cr3t-T0KEN"});
  CHECK(values(md, "sid") == std::vector<std::string>{"42"});
  CHECK(values(md, "version") == std::vector<std::string>{"0.1.0"});
  CHECK(values(md, "instance") == std::vector<std::string>{"64bae291-66ea-4910-a2a2-92eb99224a28"});
}

TEST_CASE("data metadata: 5-tuple with plain IPv4, session, counters, Control keys") {
  std::vector<KeyValues> control{{"backend-pin", {"42b0e9c9"}}, {"x-multi", {"a", "b"}}};
  std::vector<std::string> skipped;
  Metadata md = data_metadata(agent(), call(&control), &skipped);
  CHECK(skipped.empty());
  CHECK(values(md, "proto") == std::vector<std::string>{"BGP"});
  CHECK(values(md, "device-ip") == std::vector<std::string>{"10.250.15.1"});
  CHECK(values(md, "device-port") == std::vector<std::string>{"65411"});
  CHECK(values(md, "proxy-ip") == std::vector<std::string>{"10.250.12.10"});
  CHECK(values(md, "proxy-port") == std::vector<std::string>{"179"});
  CHECK(values(md, "session-id") ==
        std::vector<std::string>{"cbce1788-bb34-4c2c-8056-5b3224d4e893"});
  CHECK(values(md, "counter-up") == std::vector<std::string>{"3"});
  CHECK(values(md, "counter-down") == std::vector<std::string>{"5"});
  CHECK(values(md, "backend-pin") == std::vector<std::string>{"42b0e9c9"});
  CHECK(values(md, "x-multi") == std::vector<std::string>{"a", "b"});
  CHECK(values(md, "x-ch-auth-api-token").size() == 1);
}

TEST_CASE("Control metadata cannot override the agent's keys or break the call") {
  std::vector<KeyValues> control{{"session-id", {"forged"}},
                                 {"counter-up", {"99"}},
                                 {"Upper-Case", {"x"}},
                                 {"grpc-status", {"0"}},
                                 {"content-type", {"text/plain"}},
                                 {"x-newline", {"a\nb"}},
                                 {"ok-key", {"fine"}},
                                 {"blob-bin", {std::string("\x00\xff", 2)}}};
  std::vector<std::string> skipped;
  Metadata md = data_metadata(agent(), call(&control), &skipped);
  CHECK(values(md, "session-id") ==
        std::vector<std::string>{"cbce1788-bb34-4c2c-8056-5b3224d4e893"});
  CHECK(values(md, "counter-up") == std::vector<std::string>{"3"});
  CHECK(values(md, "Upper-Case").empty());
  CHECK(values(md, "grpc-status").empty());
  CHECK(values(md, "content-type").empty());
  CHECK(values(md, "x-newline").empty());
  CHECK(values(md, "ok-key") == std::vector<std::string>{"fine"});
  CHECK(values(md, "blob-bin").size() == 1);
  CHECK(skipped.size() == 6);
}

TEST_CASE("the logged metadata never shows the token") {
  std::vector<KeyValues> control{{"x-echo", {"prefix-s3cr3t-T0KEN"}}};
  Metadata md = data_metadata(agent(), call(&control), nullptr);
  std::string json = redacted_metadata_json(md, agent().token);
  CHECK(json.find("s3cr3t-T0KEN") == std::string::npos);
  json_error_t error;
  json_t* obj = json_loads(json.c_str(), 0, &error);
  REQUIRE(obj);
  CHECK(std::string(json_string_value(json_array_get(json_object_get(obj, "x-ch-auth-token"), 0))) ==
        "<redacted>");
  CHECK(std::string(json_string_value(
            json_array_get(json_object_get(obj, "x-ch-auth-api-token"), 0))) == "<redacted>");
  CHECK(std::string(json_string_value(json_array_get(json_object_get(obj, "x-echo"), 0))) ==
        "prefix-<redacted>");
  CHECK(std::string(json_string_value(json_array_get(json_object_get(obj, "device-ip"), 0))) ==
        "10.250.15.1");
  CHECK(std::string(json_string_value(json_array_get(json_object_get(obj, "x-ch-auth-email"), 0))) ==
        "ops@example.com");
  json_decref(obj);
}

TEST_CASE("redact replaces every occurrence and leaves text without the secret alone") {
  CHECK(redact("bad token abc and abc", "abc") == "bad token <redacted> and <redacted>");
  CHECK(redact("nothing here", "abc") == "nothing here");
  CHECK(redact("empty secret", "") == "empty secret");
}

TEST_CASE("server metadata JSON groups values and stays within the size limit") {
  Metadata md{{"counter-up", "0"}, {"counter-down", "0"}, {"x-request-id", "a"},
              {"x-request-id", "b"}, {"big", std::string(3000, 'x')},
              {"bin-bin", std::string("\x01\x02\xff", 3)}};
  std::string json = server_metadata_json(md, 2047);
  REQUIRE(json.size() <= 2047);
  json_error_t error;
  json_t* obj = json_loads(json.c_str(), 0, &error);
  REQUIRE(obj);
  CHECK(json_object_get(obj, "big") == nullptr);  // left out whole
  CHECK(json_array_size(json_object_get(obj, "x-request-id")) == 2);
  CHECK(std::string(json_string_value(json_array_get(json_object_get(obj, "counter-up"), 0))) ==
        "0");
  CHECK(std::string(json_string_value(json_array_get(json_object_get(obj, "bin-bin"), 0))) ==
        "AQL/");
  json_decref(obj);
}

TEST_CASE("server metadata JSON: many keys, the same choice as adding and re-dumping key by key") {
  // The reference is the obvious quadratic way: add each key (sorted), dump
  // the whole object, drop the key again if it no longer fits.
  auto reference = [](const Metadata& md, size_t max_len) {
    std::map<std::string, std::vector<std::string>> grouped;
    for (const auto& [k, v] : md) grouped[k].push_back(v);
    json_t* obj = json_object();
    auto dumped = [&] {
      char* t = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
      std::string out = t ? t : "{}";
      free(t);
      return out;
    };
    for (const auto& [k, values] : grouped) {
      json_t* array = json_array();
      for (const auto& v : values) json_array_append_new(array, json_string(v.c_str()));
      json_object_set_new(obj, k.c_str(), array);
      if (dumped().size() > max_len) json_object_del(obj, k.c_str());
    }
    std::string out = dumped();
    json_decref(obj);
    return out;
  };
  Metadata md;
  for (int i = 0; i < 400; ++i) {
    std::string key = "k" + std::to_string(i * 7919 % 400);
    // Sizes from 0 to 60 characters, quotes and backslashes escaped by JSON.
    md.emplace_back(key, std::string(static_cast<size_t>(i % 61), i % 5 ? 'v' : '"'));
    if (i % 9 == 0) md.emplace_back(key, "\\second");
  }
  for (size_t max_len : {size_t{2}, size_t{40}, size_t{1000}, size_t{2047}, size_t{100000}}) {
    INFO("max_len " << max_len);
    std::string fast = server_metadata_json(md, max_len);
    CHECK(fast == reference(md, max_len));
    CHECK(fast.size() <= max_len);
  }
}

TEST_CASE("server metadata JSON leaves out keys with a NUL inside (jansson would cut them)") {
  Metadata md{{std::string("a\0x", 3), "1"}, {std::string("a\0y", 3), "2"}, {"b", "3"}};
  CHECK(server_metadata_json(md, 2047) == R"({"b":["3"]})");
}

TEST_CASE("counters parse strictly") {
  CHECK(parse_counter("0") == 0u);
  CHECK(parse_counter("18446744073709551615") == UINT64_MAX);
  CHECK_FALSE(parse_counter("18446744073709551616"));
  CHECK_FALSE(parse_counter(""));
  CHECK_FALSE(parse_counter("-1"));
  CHECK_FALSE(parse_counter(" 1"));
  CHECK_FALSE(parse_counter("1x"));
}

TEST_CASE("metadata key and value rules") {
  CHECK(valid_metadata_key("backend-pin"));
  CHECK(valid_metadata_key("a.b_c-1"));
  CHECK_FALSE(valid_metadata_key(""));
  CHECK_FALSE(valid_metadata_key("Backend"));
  CHECK_FALSE(valid_metadata_key("grpc-x"));
  CHECK_FALSE(valid_metadata_key(":path"));
  CHECK(valid_metadata_value("k", "printable ~"));
  CHECK_FALSE(valid_metadata_value("k", "tab\t"));
  CHECK(valid_metadata_value("k-bin", std::string("\0\1", 2)));
}
