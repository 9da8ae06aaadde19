// The Prometheus text: every family has HELP and TYPE, names and labels are
// well-formed, and the figures come from the region.
#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "admin/metrics_text.h"
#include "admin_fixture.h"

using namespace kbgp;
using namespace kbgp::admin;
using test::kNowRealtime;

namespace {

struct Parsed {
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::map<std::string, std::string> samples;  // "name{labels}" -> value
  std::vector<std::string> order;              // family order of samples
};

Parsed parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  static const std::regex sample_re(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)$)");
  while (std::getline(in, line)) {
    INFO(line);
    REQUIRE_FALSE(line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      REQUIRE(sp != std::string::npos);
      p.help[rest.substr(0, sp)] = rest.substr(sp + 1);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      REQUIRE(sp != std::string::npos);
      std::string name = rest.substr(0, sp);
      REQUIRE(p.help.count(name) == 1);  // HELP comes first
      p.type[name] = rest.substr(sp + 1);
    } else {
      std::smatch m;
      REQUIRE(std::regex_match(line, m, sample_re));
      std::string name = m[1];
      REQUIRE(p.type.count(name) == 1);  // TYPE before the first sample
      std::string key = name + m[2].str();
      REQUIRE(p.samples.count(key) == 0);
      p.samples[key] = m[7];
      if (p.order.empty() || p.order.back() != name) p.order.push_back(name);
    }
  }
  return p;
}

}  // namespace

TEST_CASE("every metric has HELP and TYPE, a kbgp_ name, and counters end in _total") {
  auto region = test::make_region();
  std::string text = metrics_text(*region, test::test_now());
  REQUIRE(text.back() == '\n');
  Parsed p = parse(text);
  CHECK(p.help.size() == p.type.size());
  for (const auto& [name, type] : p.type) {
    INFO(name);
    CHECK(name.rfind("kbgp_", 0) == 0);
    CHECK((type == "counter" || type == "gauge"));
    if (type == "counter") CHECK(name.size() > 6);
    if (type == "counter") CHECK(name.substr(name.size() - 6) == "_total");
    if (type == "gauge") CHECK(name.find("_total") == std::string::npos);
    CHECK_FALSE(p.help[name].empty());
  }
  // Samples of one family are contiguous.
  std::set<std::string> seen(p.order.begin(), p.order.end());
  CHECK(seen.size() == p.order.size());
}

TEST_CASE("the metrics the brief asks for are there with the region's values") {
  auto region = test::make_region();
  test::add_session(*region, 1, "10.0.0.1:179", kNowRealtime);
  test::add_session(*region, 2, "10.0.0.2:179", kNowRealtime);
  region->counters.connections_accepted = 12;
  region->counters.connections_denied = 3;
  region->counters.sessions_closed = 9;
  region->counters.framing_errors = 1;
  region->counters.bytes_up = 1000;
  region->counters.bytes_down = 2000;
  region->counters.messages_up = 10;
  region->counters.messages_down = 20;
  region->counters.grpc_connections_open = 1;
  region->counters.data_streams_open = 2;
  region->counters.grpc_reconnects = 4;
  Parsed p = parse(metrics_text(*region, test::test_now()));
  CHECK(p.samples["kbgp_sessions_active"] == "2");
  CHECK(p.samples["kbgp_sessions_accepted_total"] == "12");
  CHECK(p.samples["kbgp_sessions_denied_total"] == "3");
  CHECK(p.samples["kbgp_sessions_closed_total"] == "9");
  CHECK(p.samples["kbgp_framing_errors_total"] == "1");
  CHECK(p.samples["kbgp_bytes_total{direction=\"up\"}"] == "1000");
  CHECK(p.samples["kbgp_bytes_total{direction=\"down\"}"] == "2000");
  CHECK(p.samples["kbgp_messages_total{direction=\"up\"}"] == "10");
  CHECK(p.samples["kbgp_messages_total{direction=\"down\"}"] == "20");
  CHECK(p.samples["kbgp_grpc_connections_open"] == "1");
  CHECK(p.samples["kbgp_data_streams_open"] == "2");
  CHECK(p.samples["kbgp_grpc_reconnects_total"] == "4");
  CHECK(p.samples["kbgp_control_stream_connected"] == "1");
  CHECK(p.samples["kbgp_control_heartbeat_rtt_seconds"] == "0.001500");
  CHECK(p.samples["kbgp_worker_restarts_total{worker=\"uplink\"}"] == "2");
  CHECK(p.samples["kbgp_worker_restarts_total{worker=\"listener\"}"] == "0");
  CHECK(p.samples["kbgp_worker_up{worker=\"admin\"}"] == "1");
  CHECK(p.type["kbgp_sessions_active"] == "gauge");
  CHECK(p.type["kbgp_bytes_total"] == "counter");
}

TEST_CASE("label values are escaped") {
  CHECK(escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  auto region = test::make_region();
  test::copy_text(region->config.version, sizeof region->config.version, "1.0 \"quoted\"\\");
  Parsed p = parse(metrics_text(*region, test::test_now()));
  CHECK(p.samples.count(
            "kbgp_build_info{version=\"1.0 \\\"quoted\\\"\\\\\",instance=\"9ef12a66-47ff-45b5-"
            "b56b-23a76941c655\"}") == 1);
}
