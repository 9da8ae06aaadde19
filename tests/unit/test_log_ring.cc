// The shared-memory log ring (common/log_ring.h): order, drop-oldest when
// the reader falls behind, untrusted contents, concurrent writers, and the
// log.cc hook (JSON always, shortened rather than cut off).
#include <catch2/catch.hpp>

#include <jansson.h>

#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/log_ring.h"

using namespace kbgp;

namespace {

struct RingFixture {
  std::unique_ptr<logring::Region> region = std::make_unique<logring::Region>();
  RingFixture() {
    std::memset(static_cast<void*>(region.get()), 0, sizeof(logring::Region));
    logring::init(region.get());
  }
};

std::vector<std::string> drain_all(logring::Reader& r, int64_t now = 0) {
  std::vector<std::string> out;
  r.drain(100000, now, [&](logring::Line&& l) { out.push_back(std::move(l.text)); });
  return out;
}

}  // namespace

TEST_CASE("log ring: lines come out in order, once") {
  RingFixture f;
  logring::Reader reader(f.region.get());
  for (int i = 0; i < 10; ++i)
    logring::append(f.region.get(), 2, i, "{\"n\":" + std::to_string(i) + "}");
  auto lines = drain_all(reader);
  REQUIRE(lines.size() == 10);
  CHECK(lines[0] == "{\"n\":0}");
  CHECK(lines[9] == "{\"n\":9}");
  CHECK(drain_all(reader).empty());
  CHECK(reader.dropped() == 0);
  CHECK(logring::valid(f.region.get(), sizeof(logring::Region)));
  CHECK_FALSE(logring::valid(f.region.get(), 100));
}

TEST_CASE("log ring: a reader that falls behind loses the oldest lines, counted") {
  RingFixture f;
  logring::Reader reader(f.region.get());
  const uint32_t total = logring::kLogRecords + 300;
  for (uint32_t i = 0; i < total; ++i)
    logring::append(f.region.get(), 2, i, "{\"n\":" + std::to_string(i) + "}");
  auto lines = drain_all(reader);
  CHECK(lines.size() == logring::kLogRecords);
  CHECK(reader.dropped() == 300);
  CHECK(lines.front() == "{\"n\":300}");
  CHECK(lines.back() == "{\"n\":" + std::to_string(total - 1) + "}");
}

TEST_CASE("log ring: a record being written waits, then is skipped if its writer died") {
  RingFixture f;
  logring::Reader reader(f.region.get());
  logring::append(f.region.get(), 2, 0, "{\"a\":1}");
  // A writer took ticket 1 and died before finishing.
  uint64_t ticket = f.region->header.head.fetch_add(1);
  f.region->records[ticket % logring::kLogRecords].seq.store(2 * ticket + 1);
  logring::append(f.region.get(), 2, 0, "{\"c\":3}");
  CHECK(drain_all(reader, 0).size() == 1);            // stops at the busy record
  CHECK(drain_all(reader, 500'000'000).empty());      // still waiting
  auto later = drain_all(reader, 2'000'000'000);      // given up on it
  REQUIRE(later.size() == 1);
  CHECK(later[0] == "{\"c\":3}");
  CHECK(reader.dropped() == 1);
}

TEST_CASE("log ring: garbage written by another process stays in bounds") {
  RingFixture f;
  logring::Reader reader(f.region.get());
  logring::append(f.region.get(), 2, 0, "{\"ok\":1}");
  f.region->records[0].length = 0xffffffff;       // a hostile length
  auto lines = drain_all(reader);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].size() == logring::kTextBytes);  // clamped
  f.region->header.tail.store(1'000'000);         // tail in the future
  logring::append(f.region.get(), 2, 0, "{\"next\":1}");
  CHECK(drain_all(reader).size() <= 1);
  f.region->header.head.store(~0ULL - 5);  // head anywhere: writers still stay in bounds
  logring::append(f.region.get(), 2, 0, "{\"x\":1}");
  CHECK(drain_all(reader).size() <= logring::kLogRecords);
}

TEST_CASE("log ring: concurrent writers, nothing torn") {
  RingFixture f;
  logring::Reader reader(f.region.get());
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < 200; ++i)
        logring::append(f.region.get(), 2, 0,
                        "{\"w\":" + std::to_string(w) + ",\"i\":" + std::to_string(i) + "}");
    });
  std::set<std::string> seen;
  for (auto& t : writers) t.join();
  for (auto& l : drain_all(reader, 0)) seen.insert(l);
  CHECK(seen.size() == 800);
}

TEST_CASE("log ring: log::write copies JSON even with --human-logs, shortened when too long") {
  RingFixture f;
  logring::Reader reader(f.region.get());
  log::init("testcomp", log::Level::Info, log::Format::Human);
  logring::attach(f.region.get());
  log::info("hello ring", {{"peer-addr", "10.0.0.1:179"}});
  log::debug("below the level: not copied");
  std::string huge(3000, 'x');
  log::warn("huge", {{"blob", huge}, {"other", "y"}});
  logring::attach(nullptr);
  log::init("testcomp", log::Level::Info, log::Format::Json);
  auto lines = drain_all(reader);
  REQUIRE(lines.size() == 2);
  json_error_t err;
  json_t* first = json_loads(lines[0].c_str(), 0, &err);
  REQUIRE(first);
  CHECK(std::string(json_string_value(json_object_get(first, "message"))) == "hello ring");
  CHECK(std::string(json_string_value(json_object_get(first, "component"))) == "testcomp");
  CHECK(std::string(json_string_value(json_object_get(first, "peer-addr"))) == "10.0.0.1:179");
  json_decref(first);
  json_t* second = json_loads(lines[1].c_str(), 0, &err);
  REQUIRE(second);
  CHECK(std::string(json_string_value(json_object_get(second, "truncated"))) == "true");
  CHECK(json_string_length(json_object_get(second, "blob")) <= 1024);
  CHECK(std::string(json_string_value(json_object_get(second, "level"))) == "warn");
  json_decref(second);
}

TEST_CASE("log lines keep fields whose bytes are not valid UTF-8") {
  // A device's or backend's bytes in a field: jansson refuses them, and the
  // field used to vanish from the JSON line.
  log::init("unit", log::Level::Info, log::Format::Json);
  std::string bad = std::string("r1-") + '\xff' + "\xc3\xa9" + '\xc3';  // invalid, é, cut-off
  std::string line = log::format_line(log::Level::Info, "device name", {{"device", bad}}, 0);
  json_error_t error;
  json_t* obj = json_loads(line.c_str(), 0, &error);
  REQUIRE(obj != nullptr);
  json_t* value = json_object_get(obj, "device");
  REQUIRE(value != nullptr);
  CHECK(std::string(json_string_value(value)) == "r1-\\xFF\xc3\xa9\\xC3");
  json_decref(obj);

  log::init("unit", log::Level::Info, log::Format::Human);
  std::string human = log::format_line(log::Level::Info, "device name", {{"device", bad}}, 0);
  INFO(human);
  CHECK(human.find("device=\"r1-\\\\xFF\xc3\xa9\\\\xC3\"") != std::string::npos);
  log::init("unit", log::Level::Info, log::Format::Json);
}
