#include <catch2/catch.hpp>

#include "common/endpoint.h"
#include "common/uuid.h"

using kbgp::Endpoint;

TEST_CASE("endpoints parse and print IPv4 and IPv6 with ports") {
  auto v4 = Endpoint::parse("10.1.2.3:179");
  REQUIRE(v4);
  CHECK(v4->family == AF_INET);
  CHECK(v4->port == 179);
  CHECK(v4->to_string() == "10.1.2.3:179");
  auto v6 = Endpoint::parse("[::1]:1790");
  REQUIRE(v6);
  CHECK(v6->family == AF_INET6);
  CHECK(v6->to_string() == "[::1]:1790");
  auto bare = Endpoint::parse("::", true, 179);
  REQUIRE(bare);
  CHECK(bare->to_string() == "[::]:179");
}

TEST_CASE("bad endpoints are refused") {
  for (const char* bad : {"", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3:179",
                          "[::1", "[::1]x", "host:179", "1.2.3.4:1a", "1.2.3.4"}) {
    INFO(bad);
    CHECK_FALSE(Endpoint::parse(bad));
  }
}

TEST_CASE("IPv4-mapped IPv6 addresses read as IPv4") {
  auto mapped = Endpoint::parse("[::ffff:127.0.0.3]:5000");
  REQUIRE(mapped);
  auto plain = mapped->unmapped();
  CHECK(plain.family == AF_INET);
  CHECK(plain.to_string() == "127.0.0.3:5000");
  CHECK(mapped->same_address(*Endpoint::parse("127.0.0.3:1")));
}

TEST_CASE("sockaddr round trip") {
  auto e = *Endpoint::parse("[2001:db8::7]:65000");
  sockaddr_storage ss;
  socklen_t len = e.to_sockaddr(&ss);
  CHECK(len == sizeof(sockaddr_in6));
  CHECK(Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)) == e);
}

TEST_CASE("v4 UUIDs are random, versioned and round-trip") {
  uint8_t a[16], b[16], parsed[16];
  kbgp::uuid_v4(a);
  kbgp::uuid_v4(b);
  std::string text = kbgp::uuid_to_string(a);
  CHECK(text.size() == 36);
  CHECK(text[14] == '4');
  CHECK(std::string("89ab").find(text[19]) != std::string::npos);
  CHECK(text != kbgp::uuid_to_string(b));
  REQUIRE(kbgp::uuid_parse(text, parsed));
  CHECK(std::equal(a, a + 16, parsed));
  CHECK_FALSE(kbgp::uuid_parse("not-a-uuid", parsed));
  CHECK_FALSE(kbgp::uuid_parse("0123456789012345678901234567890123x5", parsed));
}

#include "common/timeutil.h"

TEST_CASE("timestamps are UTC in the vendor's two forms") {
  // 2023-07-25T17:01:25.409183151Z
  int64_t ns = 1690304485LL * 1000000000 + 409183151;
  CHECK(kbgp::format_time_rfc3339(ns) == "2023-07-25T17:01:25.409183151Z");
  CHECK(kbgp::format_time_human(ns) == "2023-07-25 17:01:25.40");
  CHECK(kbgp::format_time_rfc3339(0) == "1970-01-01T00:00:00.000000000Z");
  CHECK(kbgp::format_time_rfc3339(951782400LL * 1000000000) == "2000-02-29T00:00:00.000000000Z");
}
