#include <catch2/catch.hpp>

#include "uplink/control_cache.h"

using namespace kbgp::uplink;

namespace {
constexpr int64_t kSecond = 1'000'000'000;

ControlAnswer answer(const std::string& ip, uint32_t ttl_seconds, uint32_t ttl_counter) {
  ControlAnswer a;
  a.proto = "BGP";
  a.device_ip = ip;
  a.ttl_seconds = ttl_seconds;
  a.ttl_counter = ttl_counter;
  a.device_id = 7;
  a.device_name = "edge-1";
  a.metadata.push_back({"backend-pin", {"42b0e9c9"}});
  return a;
}
}  // namespace

TEST_CASE("control cache serves an answer until ttl_seconds pass") {
  ControlCache cache(0);
  cache.put(answer("10.0.0.1", 60, 0), 100 * kSecond);
  auto hit = cache.use("BGP", "10.0.0.1", 159 * kSecond);
  REQUIRE(hit);
  CHECK(hit->device_name == "edge-1");
  REQUIRE(hit->metadata.size() == 1);
  CHECK(hit->metadata[0].values[0] == "42b0e9c9");
  CHECK_FALSE(cache.use("BGP", "10.0.0.1", 160 * kSecond));
  CHECK(cache.size() == 0);  // an expired entry is removed when found
}

TEST_CASE("control cache keys on proto and device ip") {
  ControlCache cache(0);
  cache.put(answer("10.0.0.1", 60, 0), 0);
  CHECK_FALSE(cache.use("BGP", "10.0.0.2", 1));
  CHECK_FALSE(cache.use("BMP", "10.0.0.1", 1));
  CHECK(cache.use("BGP", "10.0.0.1", 1));
}

TEST_CASE("control cache does not keep an answer with ttl_seconds 0") {
  ControlCache cache(0);
  cache.put(answer("10.0.0.1", 60, 0), 0);
  REQUIRE(cache.size() == 1);
  // A newer answer that forbids caching also removes the older one.
  cache.put(answer("10.0.0.1", 0, 0), kSecond);
  CHECK(cache.size() == 0);
  CHECK_FALSE(cache.use("BGP", "10.0.0.1", kSecond));
}

TEST_CASE("control cache serves at most ttl_counter times") {
  ControlCache cache(0);
  cache.put(answer("10.0.0.1", 60, 2), 0);
  CHECK(cache.use("BGP", "10.0.0.1", 1));
  CHECK(cache.use("BGP", "10.0.0.1", 2));
  CHECK_FALSE(cache.use("BGP", "10.0.0.1", 3));
  CHECK(cache.size() == 0);
}

TEST_CASE("control cache with ttl_counter 0 has no use limit") {
  ControlCache cache(0);
  cache.put(answer("10.0.0.1", 60, 0), 0);
  for (int i = 0; i < 1000; ++i) REQUIRE(cache.use("BGP", "10.0.0.1", i));
}

TEST_CASE("a newer answer replaces the cached one and restarts its limits") {
  ControlCache cache(0);
  cache.put(answer("10.0.0.1", 10, 1), 0);
  auto update = answer("10.0.0.1", 10, 3);
  update.device_name = "edge-1-renamed";
  cache.put(update, 5 * kSecond);
  auto hit = cache.use("BGP", "10.0.0.1", 14 * kSecond);
  REQUIRE(hit);
  CHECK(hit->device_name == "edge-1-renamed");
  CHECK(cache.use("BGP", "10.0.0.1", 14 * kSecond));
  CHECK(cache.use("BGP", "10.0.0.1", 14 * kSecond));
  CHECK_FALSE(cache.use("BGP", "10.0.0.1", 14 * kSecond));
}

TEST_CASE("a KILL drops the cached answer") {
  ControlCache cache(0);
  cache.put(answer("10.0.0.1", 60, 0), 0);
  cache.put(answer("10.0.0.2", 60, 0), 0);
  CHECK(cache.drop("BGP", "10.0.0.1"));
  CHECK_FALSE(cache.drop("BGP", "10.0.0.1"));
  CHECK_FALSE(cache.use("BGP", "10.0.0.1", 1));
  CHECK(cache.use("BGP", "10.0.0.2", 1));
}

TEST_CASE("control cache expire removes only expired entries") {
  ControlCache cache(0);
  cache.put(answer("10.0.0.1", 10, 0), 0);
  cache.put(answer("10.0.0.2", 100, 0), 0);
  cache.expire(50 * kSecond);
  CHECK(cache.size() == 1);
  CHECK(cache.use("BGP", "10.0.0.2", 50 * kSecond));
}

TEST_CASE("blocked answers are cached like any other") {
  ControlCache cache(0);
  auto blocked = answer("10.0.0.9", 1200, 0);
  blocked.verdict = ControlVerdict::Block;
  cache.put(blocked, 0);
  auto hit = cache.use("BGP", "10.0.0.9", 1199 * kSecond);
  REQUIRE(hit);
  CHECK(hit->blocked());
}

TEST_CASE("control cache knows when its next entry expires") {
  ControlCache cache(0);
  CHECK(cache.next_expiry() == INT64_MAX);
  cache.put(answer("10.0.0.1", 60, 0), 0);
  cache.put(answer("10.0.0.2", 10, 0), 5 * kSecond);
  CHECK(cache.next_expiry() == 15 * kSecond);
  cache.expire(14 * kSecond);  // not due: nothing walked, nothing removed
  CHECK(cache.size() == 2);
  cache.expire(15 * kSecond);
  CHECK(cache.size() == 1);
  CHECK(cache.next_expiry() == 60 * kSecond);
  cache.expire(60 * kSecond);
  CHECK(cache.size() == 0);
  CHECK(cache.next_expiry() == INT64_MAX);
}
