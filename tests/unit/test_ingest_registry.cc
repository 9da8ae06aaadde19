// kbgp-ingest device registry: parsing, validation messages, lookup.
#include <catch2/catch.hpp>

#include <string>

#include "ingest/registry.h"

using kbgp::Endpoint;
using kbgp::ingest::Registry;

namespace {

const char* kGood = R"({"devices": [
  {"device_ip": "127.0.0.3", "site_id": 0, "company_id": 1001, "device_id": 3,
   "device_name": "router3", "md5_key": "", "collector": "127.0.0.1:17902",
   "source_ip": "127.0.0.3"},
  {"device_ip": "127.0.0.4", "site_id": 7, "company_id": 1001, "device_id": 4,
   "device_name": "router4-site7", "md5_key": "secret", "collector": "127.0.0.1:17903"},
  {"device_ip": "127.0.0.4", "site_id": 8, "company_id": 1001, "device_id": 5,
   "device_name": "router4-site8", "collector": "127.0.0.1:17904", "source_ip": "127.0.0.9"},
  {"device_ip": "::1", "company_id": 1002, "device_id": 6, "device_name": "v6",
   "collector": "[::1]:179"}
]})";

// Parses `text`, expecting failure; returns the error.
std::string parse_error(const std::string& text) {
  std::string error;
  auto reg = Registry::parse(text, &error);
  CHECK_FALSE(reg.has_value());
  return error;
}

std::string one_device(const std::string& fields) {
  return R"({"devices": [{)" + fields + "}]}";
}

const std::string kBase =
    R"("device_ip": "127.0.0.3", "company_id": 1, "device_id": 3, "device_name": "r3")";

}  // namespace

TEST_CASE("registry: a good file parses with defaults filled in", "[ingest][registry]") {
  std::string error;
  auto reg = Registry::parse(kGood, &error);
  REQUIRE(reg.has_value());
  INFO(error);
  REQUIRE(reg->size() == 4);
  const auto& d0 = reg->devices()[0];
  CHECK(d0.ip.address_string() == "127.0.0.3");
  CHECK(d0.company_id == 1001);
  CHECK(d0.device_id == 3);
  CHECK(d0.device_name == "router3");
  CHECK(d0.md5_key.empty());
  CHECK(d0.collector.to_string() == "127.0.0.1:17902");
  const auto& d1 = reg->devices()[1];
  CHECK(d1.site_id == 7);
  CHECK(d1.md5_key == "secret");
  CHECK(d1.source.address_string() == "127.0.0.4");  // default: the device address
  CHECK(d1.source.port == 0);
  CHECK(reg->devices()[2].source.address_string() == "127.0.0.9");
  const auto& d3 = reg->devices()[3];
  CHECK(d3.site_id == 0);
  CHECK(d3.collector.family == AF_INET6);
  CHECK(d3.collector.port == 179);
}

TEST_CASE("registry: lookup by (device ip, site)", "[ingest][registry]") {
  std::string error;
  auto reg = Registry::parse(kGood, &error);
  REQUIRE(reg.has_value());
  SECTION("site 0 means any site: the first entry with the address") {
    const auto* d = reg->find("127.0.0.4", 0);
    REQUIRE(d != nullptr);
    CHECK(d->device_id == 4);
  }
  SECTION("a site picks the entry of that site") {
    REQUIRE(reg->find("127.0.0.4", 7) != nullptr);
    CHECK(reg->find("127.0.0.4", 7)->device_id == 4);
    REQUIRE(reg->find("127.0.0.4", 8) != nullptr);
    CHECK(reg->find("127.0.0.4", 8)->device_id == 5);
  }
  SECTION("a site without an entry for the address finds nothing") {
    CHECK(reg->find("127.0.0.4", 9) == nullptr);
    CHECK(reg->find("127.0.0.3", 7) == nullptr);  // entry has site 0, not 7
  }
  SECTION("site 0 entry matches site 0") {
    REQUIRE(reg->find("127.0.0.3", 0) != nullptr);
    CHECK(reg->find("127.0.0.3", 0)->device_id == 3);
  }
  SECTION("unknown and malformed addresses find nothing") {
    CHECK(reg->find("127.0.0.5", 0) == nullptr);
    CHECK(reg->find("not-an-ip", 0) == nullptr);
    CHECK(reg->find("", 0) == nullptr);
  }
  SECTION("IPv6, and IPv4-mapped IPv6 matches IPv4") {
    REQUIRE(reg->find("::1", 0) != nullptr);
    CHECK(reg->find("::1", 0)->device_id == 6);
    REQUIRE(reg->find("::ffff:127.0.0.3", 0) != nullptr);
    CHECK(reg->find("::ffff:127.0.0.3", 0)->device_id == 3);
    auto e = Endpoint::parse("127.0.0.3:5000");
    REQUIRE(e.has_value());
    REQUIRE(reg->find(*e, 0) != nullptr);  // the port does not matter
  }
}

TEST_CASE("registry: an empty device list is valid", "[ingest][registry]") {
  std::string error;
  auto reg = Registry::parse(R"({"devices": []})", &error);
  REQUIRE(reg.has_value());
  CHECK(reg->size() == 0);
  CHECK(reg->find("127.0.0.1", 0) == nullptr);
}

TEST_CASE("registry: bad files give errors naming entry and field", "[ingest][registry]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(parse_error("{\"devices\": [\n{]}"), Contains("line 2"));
  CHECK_THAT(parse_error("[]"), Contains("must be a JSON object"));
  CHECK_THAT(parse_error("{}"), Contains("missing field \"devices\""));
  CHECK_THAT(parse_error(R"({"devices": {}})"), Contains("\"devices\" must be an array"));
  CHECK_THAT(parse_error(R"({"devices": [], "extra": 1})"), Contains("unknown field \"extra\""));
  CHECK_THAT(parse_error(R"({"devices": [1]})"), Contains("devices[0]: must be a JSON object"));

  std::string collector = R"(, "collector": "127.0.0.1:179")";
  SECTION("good base entry parses") {
    std::string error;
    CHECK(Registry::parse(one_device(kBase + collector), &error).has_value());
  }
  SECTION("required fields") {
    auto e = parse_error(one_device(R"("company_id": 1, "device_id": 3, "device_name": "r")" +
                                    collector));
    CHECK_THAT(e, Contains("devices[0]") && Contains("missing field \"device_ip\""));
    CHECK_THAT(parse_error(one_device(kBase)), Contains("missing field \"collector\""));
    CHECK_THAT(parse_error(one_device(R"("device_ip": "127.0.0.3", "device_id": 3, )"
                                      R"("device_name": "r")" + collector)),
               Contains("missing field \"company_id\""));
  }
  SECTION("wrong types and ranges") {
    CHECK_THAT(parse_error(one_device(kBase + collector + R"(, "site_id": "1")")),
               Contains("\"site_id\" must be an integer, found a string"));
    CHECK_THAT(parse_error(one_device(kBase + collector + R"(, "site_id": -1)")),
               Contains("\"site_id\" must be between 0 and 4294967295"));
    CHECK_THAT(parse_error(one_device(kBase + collector + R"(, "site_id": 4294967296)")),
               Contains("site_id"));
    CHECK_THAT(parse_error(one_device(kBase + R"(, "collector": 179)")),
               Contains("\"collector\" must be a string"));
  }
  SECTION("addresses") {
    CHECK_THAT(parse_error(one_device(R"("device_ip": "router3", "company_id": 1, )"
                                      R"("device_id": 3, "device_name": "r")" + collector)),
               Contains("\"device_ip\" is not an IPv4 or IPv6 address"));
    CHECK_THAT(parse_error(one_device(kBase + R"(, "collector": "127.0.0.1")")),
               Contains("\"collector\" must be \"address:port\""));
    CHECK_THAT(parse_error(one_device(kBase + R"(, "collector": "localhost:179")")),
               Contains("collector"));
    CHECK_THAT(parse_error(one_device(kBase + R"(, "collector": "::1:179")")),
               Contains("collector"));
    CHECK_THAT(parse_error(one_device(kBase + R"(, "collector": "127.0.0.1:0")")),
               Contains("collector"));
    CHECK_THAT(parse_error(one_device(kBase + collector + R"(, "source_ip": "x")")),
               Contains("\"source_ip\" is not an IPv4 or IPv6 address"));
    CHECK_THAT(parse_error(one_device(kBase + R"(, "collector": "[::1]:179")")),
               Contains("is IPv4 but collector [::1]:179 is IPv6") && Contains("source_ip"));
  }
  SECTION("unknown (misspelt) field, md5 length, empty name") {
    CHECK_THAT(parse_error(one_device(kBase + R"(, "colector": "127.0.0.1:179")")),
               Contains("unknown field \"colector\""));
    CHECK_THAT(parse_error(one_device(kBase + collector + ", \"md5_key\": \"" +
                                      std::string(81, 'k') + "\"")),
               Contains("\"md5_key\" is longer than 80 bytes"));
    std::string error;
    CHECK(Registry::parse(one_device(kBase + collector + ", \"md5_key\": \"" +
                                     std::string(80, 'k') + "\""), &error)
              .has_value());
    CHECK_THAT(parse_error(one_device(R"("device_ip": "127.0.0.3", "company_id": 1, )"
                                      R"("device_id": 3, "device_name": "")" + collector)),
               Contains("\"device_name\" must not be empty"));
  }
  SECTION("the same address twice in one site") {
    std::string entry = "{" + kBase + collector + "}";
    auto e = parse_error(R"({"devices": [)" + entry + "," + entry + "]}");
    CHECK_THAT(e, Contains("devices[1]") && Contains("already listed as devices[0]"));
    std::string other_site = "{" + kBase + collector + R"(, "site_id": 2})";
    std::string error;
    CHECK(Registry::parse(R"({"devices": [)" + entry + "," + other_site + "]}", &error)
              .has_value());
  }
  SECTION("a duplicate JSON key is refused") {
    CHECK_FALSE(parse_error(one_device(kBase + collector + R"(, "device_id": 4)")).empty());
  }
}

TEST_CASE("registry: load names the file", "[ingest][registry]") {
  std::string error;
  CHECK_FALSE(Registry::load("/nonexistent/registry.json", &error).has_value());
  CHECK_THAT(error, Catch::Matchers::Contains("/nonexistent/registry.json"));
}
