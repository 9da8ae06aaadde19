// kbgp-ingest command line.
#include <catch2/catch.hpp>

#include <string>
#include <variant>
#include <vector>

#include "ingest/options.h"

using Catch::Matchers::Contains;
using kbgp::ingest::Options;
using kbgp::ingest::OptionsExit;
using kbgp::ingest::parse_options;

namespace {

const std::vector<std::string> kRequired = {"--listen", "127.0.0.1:9443", "--tls-cert",
                                            "s.pem", "--tls-key", "s.key", "--credentials",
                                            "c.json", "--registry", "r.json"};

std::vector<std::string> with(std::vector<std::string> extra,
                              std::vector<std::string> base = kRequired) {
  base.insert(base.end(), extra.begin(), extra.end());
  return base;
}

Options ok(const std::vector<std::string>& args) {
  auto r = parse_options(args);
  if (auto* e = std::get_if<OptionsExit>(&r)) FAIL("unexpected exit: " << e->text);
  return std::get<Options>(r);
}

OptionsExit exits(const std::vector<std::string>& args) {
  auto r = parse_options(args);
  REQUIRE(std::holds_alternative<OptionsExit>(r));
  return std::get<OptionsExit>(r);
}

// A usage error: exit 2, one line naming the flag.
std::string usage_error(const std::vector<std::string>& args) {
  OptionsExit e = exits(args);
  CHECK(e.code == 2);
  CHECK(e.text.find('\n') == std::string::npos);
  return e.text;
}

}  // namespace

TEST_CASE("options: required flags and defaults", "[ingest][options]") {
  Options o = ok(kRequired);
  CHECK(o.listen.to_string() == "127.0.0.1:9443");
  CHECK(o.tls_cert == "s.pem");
  CHECK(o.tls_key == "s.key");
  CHECK(o.credentials == "c.json");
  CHECK(o.registry == "r.json");
  CHECK_FALSE(o.plaintext);
  CHECK(o.log_level == kbgp::log::Level::Info);
  CHECK_FALSE(o.human_logs);
  CHECK(o.grace_period_s == 60);
  CHECK(o.keepalive_interval_s == 30);
  CHECK(o.control_ttl_s == 600);
  CHECK(o.control_ttl_counter == 0);
}

TEST_CASE("options: --flag=value, single dash, every flag", "[ingest][options]") {
  Options o = ok({"-listen=[::1]:9443", "--credentials=c.json", "-registry", "r.json",
                  "--plaintext", "--log-level=debug", "-human-logs", "--grace-period", "0",
                  "--keepalive-interval=5", "-control-ttl=1200",
                  "--control-ttl-counter", "3"});
  CHECK(o.listen.to_string() == "[::1]:9443");
  CHECK(o.plaintext);
  CHECK(o.log_level == kbgp::log::Level::Debug);
  CHECK(o.human_logs);
  CHECK(o.grace_period_s == 0);
  CHECK(o.keepalive_interval_s == 5);
  CHECK(o.control_ttl_s == 1200);
  CHECK(o.control_ttl_counter == 3);
  CHECK(ok(with({"--control-ttl-counter=4294967295"})).control_ttl_counter == UINT32_MAX);
  CHECK_FALSE(ok(with({"--human-logs=false"})).human_logs);
  CHECK(ok(with({"--human-logs=true"})).human_logs);
  CHECK(ok(with({"--listen", "127.0.0.1:0"})).listen.port == 0);  // last one wins
}

TEST_CASE("options: help and version exit 0", "[ingest][options]") {
  for (const char* flag : {"-h", "--help", "-help"}) {
    OptionsExit e = exits({flag});
    CHECK(e.code == 0);
    CHECK_THAT(e.text, Contains("Usage: kbgp-ingest") && Contains("--grace-period"));
  }
  OptionsExit v = exits({"--version"});
  CHECK(v.code == 0);
  CHECK_THAT(v.text, Contains("kbgp-ingest "));
}

TEST_CASE("options: bad values name the flag and exit 2", "[ingest][options]") {
  CHECK_THAT(usage_error(with({"--grace-period", "-1"})), Contains("--grace-period"));
  CHECK_THAT(usage_error(with({"--grace-period=abc"})), Contains("--grace-period"));
  CHECK_THAT(usage_error(with({"--grace-period=99999999999999999999999"})),
             Contains("--grace-period"));
  CHECK_THAT(usage_error(with({"--keepalive-interval="})), Contains("--keepalive-interval"));
  CHECK_THAT(usage_error(with({"--control-ttl", "1e3"})), Contains("--control-ttl"));
  CHECK_THAT(usage_error(with({"--control-ttl-counter", "4294967296"})),
             Contains("--control-ttl-counter"));
  CHECK_THAT(usage_error(with({"--control-ttl-counter=-1"})), Contains("--control-ttl-counter"));
  CHECK_THAT(usage_error(with({"--log-level", "loud"})), Contains("--log-level"));
  CHECK_THAT(usage_error(with({"--listen", "localhost:9443"})), Contains("--listen"));
  CHECK_THAT(usage_error(with({"--listen", "127.0.0.1"})), Contains("--listen"));
  CHECK_THAT(usage_error(with({"--listen", "127.0.0.1:70000"})), Contains("--listen"));
  CHECK_THAT(usage_error(with({"--human-logs=maybe"})), Contains("--human-logs"));
  CHECK_THAT(usage_error(with({"--registry="})), Contains("--registry"));
  CHECK_THAT(usage_error(with({"--bogus"})), Contains("unknown flag --bogus"));
  CHECK_THAT(usage_error(with({"stray"})), Contains("unexpected argument \"stray\""));
  CHECK_THAT(usage_error(with({"--help=yes"})), Contains("--help"));
}

TEST_CASE("options: missing values and missing flags", "[ingest][options]") {
  CHECK_THAT(usage_error(with({"--registry"})), Contains("--registry: missing value"));
  CHECK_THAT(usage_error({"--registry", "--plaintext"}), Contains("--registry: missing value"));
  CHECK_THAT(usage_error({"--credentials", "c", "--registry", "r", "--plaintext"}),
             Contains("--listen is required"));
  CHECK_THAT(usage_error({"--listen", "127.0.0.1:1", "--registry", "r", "--plaintext"}),
             Contains("--credentials is required"));
  CHECK_THAT(usage_error({"--listen", "127.0.0.1:1", "--credentials", "c", "--plaintext"}),
             Contains("--registry is required"));
  CHECK_THAT(usage_error({}), Contains("required"));
}

TEST_CASE("options: TLS by default, plaintext only when asked", "[ingest][options]") {
  std::vector<std::string> base = {"--listen", "127.0.0.1:9443", "--credentials", "c",
                                   "--registry", "r"};
  CHECK_THAT(usage_error(base), Contains("--tls-cert") && Contains("--plaintext"));
  CHECK_THAT(usage_error(with({"--tls-cert", "s.pem"}, base)), Contains("--tls-cert needs --tls-key"));
  CHECK_THAT(usage_error(with({"--tls-key", "s.key"}, base)), Contains("--tls-key needs --tls-cert"));
  CHECK(ok(with({"--plaintext"}, base)).plaintext);
  CHECK_THAT(usage_error(with({"--plaintext"})), Contains("--plaintext cannot be combined"));
  CHECK_THAT(usage_error(with({"--plaintext=false"}, base)), Contains("--tls-cert"));
}
