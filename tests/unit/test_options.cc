#include <catch2/catch.hpp>

#include <map>

#include "supervisor/options.h"

using namespace kbgp;

namespace {
ParseOutcome parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  return parse_options(args, [&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}
const std::vector<std::string> kAuth = {"--email", "a@b.c", "--token", "t"};
std::vector<std::string> with_auth(std::vector<std::string> args) {
  args.insert(args.end(), kAuth.begin(), kAuth.end());
  return args;
}
}  // namespace

TEST_CASE("defaults match the vendor's documentation") {
  auto r = parse(kAuth);
  REQUIRE(r.kind == ParseOutcome::Kind::Run);
  const Options& o = r.options;
  REQUIRE(o.listen.size() == 2);
  CHECK(o.listen[0].to_string() == "0.0.0.0:179");
  CHECK(o.listen[1].to_string() == "[::]:179");
  CHECK(o.target == "grpc.api.kentik.com:443");
  CHECK(o.multi == 10);
  CHECK(o.metrics_addr == "127.0.0.1");
  CHECK(o.metrics_port == 20920);
  CHECK(o.log_level == log::Level::Info);
  CHECK(o.md5_interface == "any");
  CHECK(o.log_export_url == "https://grpc.api.kentik.com/agents/v202204/logs");
  CHECK(o.metrics_export_url == "https://grpc.api.kentik.com/agents/v202204/metrics");
  CHECK_FALSE(o.insecure);
}

TEST_CASE("single or double dash, '=' or a space") {
  for (auto args : {std::vector<std::string>{"-multi", "3"}, {"--multi=3"}, {"-multi=3"},
                    {"--multi", "3"}}) {
    auto r = parse(with_auth(args));
    REQUIRE(r.kind == ParseOutcome::Kind::Run);
    CHECK(r.options.multi == 3);
  }
}

TEST_CASE("listen takes several addresses, comma-separated or repeated") {
  auto r = parse(with_auth({"--listen", "127.0.0.1:1179,[::1]:1179", "-listen=10.0.0.1"}));
  REQUIRE(r.kind == ParseOutcome::Kind::Run);
  REQUIRE(r.options.listen.size() == 3);
  CHECK(r.options.listen[1].to_string() == "[::1]:1179");
  CHECK(r.options.listen[2].to_string() == "10.0.0.1:179");
}

TEST_CASE("regions pick the target; --target overrides") {
  auto eu = parse(with_auth({"--region", "fra1"}));
  REQUIRE(eu.kind == ParseOutcome::Kind::Run);
  CHECK(eu.options.target == "grpc.api.kentik.eu:443");
  CHECK(eu.options.log_export_url == "https://grpc.api.kentik.eu/agents/v202204/logs");
  auto env_eu = parse(kAuth, {{"KENTIK_REGION", "fra1"}});
  CHECK(env_eu.options.target == "grpc.api.kentik.eu:443");
  auto both = parse(with_auth({"--region=fra1", "--target", "127.0.0.1:9443"}));
  CHECK(both.options.target == "127.0.0.1:9443");
}

TEST_CASE("environment supplies values and flags override it") {
  std::map<std::string, std::string> env = {{"KENTIK_API_EMAIL", "env@x"},
                                            {"KENTIK_API_TOKEN", "envtoken"},
                                            {"KENTIK_SITE", "12"},
                                            {"KENTIK_ENABLE_MD5", "true"}};
  auto r = parse({}, env);
  REQUIRE(r.kind == ParseOutcome::Kind::Run);
  CHECK(r.options.email == "env@x");
  CHECK(r.options.token == "envtoken");
  CHECK(r.options.site_id == 12);
  CHECK(r.options.enable_md5);
  auto o = parse({"--site-id", "3", "--email=flag@x", "--enable-md5-support=false"}, env);
  REQUIRE(o.kind == ParseOutcome::Kind::Run);
  CHECK(o.options.site_id == 3);
  CHECK(o.options.email == "flag@x");
  CHECK_FALSE(o.options.enable_md5);
}

TEST_CASE("bad values are refused with the flag named") {
  struct Case {
    std::vector<std::string> args;
    const char* mentions;
  };
  std::vector<Case> cases = {
      {{"--multi", "0"}, "--multi"},
      {{"--multi", "x"}, "--multi"},
      {{"--metrics-port", "70000"}, "--metrics-port"},
      {{"--metrics-port", "0"}, "--metrics-port"},
      {{"--metrics-addr", "localhost"}, "--metrics-addr"},
      {{"--listen", "1.2.3.4:99999"}, "--listen"},
      {{"--listen", "nonsense"}, "--listen"},
      {{"--region", "mars1"}, "--region"},
      {{"--log-level", "loud"}, "--log-level"},
      {{"--site-id", "-1"}, "--site-id"},
      {{"--target", "nohostport"}, "--target"},
      {{"--insecure=maybe"}, "--insecure"},
      {{"--bogus"}, "--bogus"},
      {{"--multi"}, "--multi"},
  };
  for (const auto& c : cases) {
    auto r = parse(with_auth(c.args));
    INFO(c.args[0]);
    CHECK(r.kind == ParseOutcome::Kind::Error);
    CHECK_THAT(r.message, Catch::Contains(c.mentions));
  }
  auto bad_env = parse(kAuth, {{"KENTIK_SITE", "abc"}});
  CHECK(bad_env.kind == ParseOutcome::Kind::Error);
  CHECK_THAT(bad_env.message, Catch::Contains("KENTIK_SITE"));
}

TEST_CASE("email and token are required") {
  auto no_email = parse({"--token", "t"});
  CHECK(no_email.kind == ParseOutcome::Kind::Error);
  CHECK_THAT(no_email.message, Catch::Contains("--email"));
  auto no_token = parse({"--email", "e"});
  CHECK(no_token.kind == ParseOutcome::Kind::Error);
  CHECK_THAT(no_token.message, Catch::Contains("--token"));
}

TEST_CASE("help and version need no credentials") {
  auto h = parse({"-h"});
  CHECK(h.kind == ParseOutcome::Kind::Help);
  CHECK_THAT(h.message, Catch::Contains("--enable-md5-support"));
  CHECK_THAT(h.message, Catch::Contains("$KENTIK_API_TOKEN"));
  CHECK(parse({"--version"}).kind == ParseOutcome::Kind::Version);
}
