#include <catch2/catch.hpp>

#include <map>
#include <set>

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

// ---- every flag and variable, table-driven --------------------------------

namespace {

std::string show(const Options& o, const std::string& flag) {
  if (flag == "disable-log-export") return o.disable_log_export ? "true" : "false";
  if (flag == "email") return o.email;
  if (flag == "enable-md5-support") return o.enable_md5 ? "true" : "false";
  if (flag == "human-logs") return o.human_logs ? "true" : "false";
  if (flag == "insecure") return o.insecure ? "true" : "false";
  if (flag == "listen") {
    std::string out;
    for (const auto& e : o.listen) out += (out.empty() ? "" : ",") + e.to_string();
    return out;
  }
  if (flag == "log-export-url") return o.log_export_url;
  if (flag == "log-level") return log::level_name(o.log_level);
  if (flag == "md5-listen-interface") return o.md5_interface;
  if (flag == "metrics-addr") return o.metrics_addr;
  if (flag == "metrics-export-url") return o.metrics_export_url;
  if (flag == "metrics-port") return std::to_string(o.metrics_port);
  if (flag == "multi") return std::to_string(o.multi);
  if (flag == "region") return o.region + "->" + o.target;
  if (flag == "site-id") return std::to_string(o.site_id);
  if (flag == "target") return o.target;
  if (flag == "token") return o.token;
  if (flag == "user") return o.user;
  if (flag == "tls-ca-file") return o.tls_ca_file;
  if (flag == "tls-server-name") return o.tls_server_name;
  if (flag == "env-file") return o.env_file;
  return "?unknown flag " + flag;
}

struct Good {
  const char* flag;
  const char* value;
  const char* expect;  // show(options, flag) afterwards
};

// A good value for every flag (--version and -h stop parsing; see below).
const Good kGood[] = {
    {"disable-log-export", "true", "true"},
    {"email", "ops@example.com", "ops@example.com"},
    {"enable-md5-support", "true", "true"},
    {"enable-md5-support", "0", "false"},
    {"human-logs", "yes", "true"},
    {"insecure", "on", "true"},
    {"listen", "127.0.0.1:1179", "127.0.0.1:1179"},
    {"listen", "[::1]:1179,10.0.0.1", "[::1]:1179,10.0.0.1:179"},
    {"log-export-url", "https://logs.example.net:8443/in", "https://logs.example.net:8443/in"},
    {"log-level", "debug", "debug"},
    {"log-level", "warning", "warn"},
    {"md5-listen-interface", "eth0", "eth0"},
    {"metrics-addr", "::1", "::1"},
    {"metrics-export-url", "https://[2001:db8::1]/m", "https://[2001:db8::1]/m"},
    {"metrics-port", "65535", "65535"},
    {"multi", "1000", "1000"},
    {"region", "fra1", "fra1->grpc.api.kentik.eu:443"},
    {"region", "iad1", "iad1->grpc.api.kentik.com:443"},
    {"site-id", "4294967295", "4294967295"},
    {"target", "backend.example:9443", "backend.example:9443"},
    {"target", "[::1]:9443", "[::1]:9443"},
    {"token", "t0k3n", "t0k3n"},
    {"user", "kbgp-test", "kbgp-test"},
    {"tls-ca-file", "/etc/ssl/ca.pem", "/etc/ssl/ca.pem"},
    {"tls-server-name", "grpc.example", "grpc.example"},
    {"env-file", "/etc/default/kbgp.env", "/etc/default/kbgp.env"},
};

struct Bad {
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  const char* mentions;  // the flag or variable named in the one-line message
};

const std::vector<Bad> kBad = {
    {{"--disable-log-export=2"}, {}, "--disable-log-export"},
    {{"--email="}, {}, "--email"},
    {{"--enable-md5-support=sometimes"}, {}, "--enable-md5-support"},
    {{}, {{"KENTIK_ENABLE_MD5", "maybe"}}, "KENTIK_ENABLE_MD5"},
    {{"--human-logs=please"}, {}, "--human-logs"},
    {{"--insecure=x"}, {}, "--insecure"},
    {{"--listen", "1.2.3.4:0"}, {}, "--listen"},
    {{"--listen", "[::1"}, {}, "--listen"},
    {{"--listen", ","}, {}, "--listen"},
    {{"--log-export-url", "ftp://x/y"}, {}, "--log-export-url"},
    {{"--log-export-url", "http://logs.example/in"}, {}, "--log-export-url"},  // token in clear
    {{"--log-export-url", "https://" + std::string(600, 'a') + "/x"}, {}, "--log-export-url"},
    {{"--log-level", "verbose"}, {}, "--log-level"},
    {{"--md5-listen-interface="}, {}, "--md5-listen-interface"},
    {{"--metrics-addr", "0.0.0.0.0"}, {}, "--metrics-addr"},
    {{"--metrics-export-url", "https://u:p@h/x"}, {}, "--metrics-export-url"},
    {{"--metrics-port", "-1"}, {}, "--metrics-port"},
    {{"--metrics-port", "65536"}, {}, "--metrics-port"},
    {{"--multi", "1001"}, {}, "--multi"},
    {{"--multi", "0"}, {}, "--multi"},
    {{"--region", "eu"}, {}, "--region"},
    {{}, {{"KENTIK_REGION", "us-east"}}, "KENTIK_REGION"},
    {{"--site-id", "4294967296"}, {}, "--site-id"},
    {{"--site-id", "1.5"}, {}, "--site-id"},
    {{}, {{"KENTIK_SITE", "x"}}, "KENTIK_SITE"},
    {{"--target", "host:"}, {}, "--target"},
    {{"--target", ":443"}, {}, "--target"},
    {{"--target", "host:70000"}, {}, "--target"},
    {{"--token="}, {}, "--token"},
    {{"--token", std::string(600, 't')}, {}, "--token"},
    {{"--user="}, {}, "--user"},
    {{"--tls-ca-file="}, {}, "--tls-ca-file"},
    {{"--tls-server-name="}, {}, "--tls-server-name"},
    {{"--version=perhaps"}, {}, "--version"},
    {{"--no-such-flag"}, {}, "--no-such-flag"},
    {{"listen"}, {}, "listen"},
    {{}, {{"HTTPS_PROXY", "https://proxy:3128"}}, "$HTTPS_PROXY"},
    {{}, {{"https_proxy", "socks5://proxy:1080"}}, "$https_proxy"},
    {{}, {{"HTTP_PROXY", "http://u:p%zz@proxy:3128"}}, "$HTTP_PROXY"},
    {{}, {{"http_proxy", "http://proxy:99999"}}, "$http_proxy"},
};

}  // namespace

TEST_CASE("every flag: a good value, as --flag value, -flag=value and (if any) its variable") {
  const std::set<std::string> bools = {"disable-log-export", "enable-md5-support", "human-logs",
                                       "insecure"};
  for (const auto& g : kGood) {
    INFO("--" << g.flag << " " << g.value);
    // Bools take their value only after '=' (a lone --flag means true).
    std::vector<std::string> spaced = {std::string("--") + g.flag, g.value};
    if (bools.count(g.flag)) spaced = {std::string("--") + g.flag + "=" + g.value};
    for (auto form : {spaced, {std::string("-") + g.flag + "=" + g.value}}) {
      std::vector<std::string> args = kAuth;  // first, so --email/--token override them
      args.insert(args.end(), form.begin(), form.end());
      auto r = parse(args);
      REQUIRE(r.kind == ParseOutcome::Kind::Run);
      CHECK(show(r.options, g.flag) == g.expect);
    }
  }
}

TEST_CASE("every variable: supplies its flag's value, and the flag overrides it") {
  struct EnvCase {
    const char* var;
    const char* flag;
    const char* env_value;
    const char* env_expect;
    const char* flag_value;
    const char* flag_expect;
  };
  const EnvCase cases[] = {
      {"KENTIK_API_EMAIL", "email", "env@x", "env@x", "flag@x", "flag@x"},
      {"KENTIK_API_TOKEN", "token", "envtok", "envtok", "flagtok", "flagtok"},
      {"KENTIK_ENABLE_MD5", "enable-md5-support", "true", "true", "false", "false"},
      {"KENTIK_REGION", "region", "fra1", "fra1->grpc.api.kentik.eu:443", "iad1",
       "iad1->grpc.api.kentik.com:443"},
      {"KENTIK_SITE", "site-id", "12", "12", "3", "3"},
      {"KBGP_USER", "user", "envuser", "envuser", "flaguser", "flaguser"},
      {"KBGP_TLS_CA_FILE", "tls-ca-file", "/env/ca.pem", "/env/ca.pem", "/flag/ca.pem",
       "/flag/ca.pem"},
      {"KBGP_TLS_SERVER_NAME", "tls-server-name", "env.example", "env.example", "flag.example",
       "flag.example"},
      {"KENTIK_LOG_LEVEL", "log-level", "debug", "debug", "warn", "warn"},
      {"KBGP_ENV_FILE", "env-file", "/env/kbgp.env", "/env/kbgp.env", "/flag/kbgp.env",
       "/flag/kbgp.env"},
  };
  for (const auto& c : cases) {
    INFO(c.var);
    std::map<std::string, std::string> env = {{"KENTIK_API_EMAIL", "a@b.c"},
                                              {"KENTIK_API_TOKEN", "t"}};
    env[c.var] = c.env_value;
    auto from_env = parse({}, env);
    REQUIRE(from_env.kind == ParseOutcome::Kind::Run);
    CHECK(show(from_env.options, c.flag) == c.env_expect);
    auto from_flag = parse({std::string("--") + c.flag + "=" + c.flag_value}, env);
    REQUIRE(from_flag.kind == ParseOutcome::Kind::Run);
    CHECK(show(from_flag.options, c.flag) == c.flag_expect);
    // An empty variable counts as unset.
    env[c.var] = "";
    if (std::string(c.var) != "KENTIK_API_EMAIL" && std::string(c.var) != "KENTIK_API_TOKEN")
      CHECK(parse({}, env).kind == ParseOutcome::Kind::Run);
  }
}

TEST_CASE("every bad value: refused with one line naming the flag or variable") {
  for (const auto& b : kBad) {
    std::string what = b.args.empty() ? b.env.begin()->first + "=" + b.env.begin()->second
                                      : b.args[0] + (b.args.size() > 1 ? " " + b.args[1] : "");
    INFO(what.substr(0, 80));
    std::vector<std::string> args = kAuth;  // first, so a case may override them
    args.insert(args.end(), b.args.begin(), b.args.end());
    auto r = parse(args, b.env);
    CHECK(r.kind == ParseOutcome::Kind::Error);
    CHECK_THAT(r.message, Catch::Contains(b.mentions));
    CHECK(r.message.find('\n') == std::string::npos);
    CHECK(r.message.find("p%zz") == std::string::npos);  // no proxy password echoed
  }
}

TEST_CASE("web proxy variables that kbgp can use are accepted") {
  for (const char* var : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"}) {
    INFO(var);
    auto r = parse(kAuth, {{var, "http://us%40er:p%40ss%25@proxy.example:3128"}});
    CHECK(r.kind == ParseOutcome::Kind::Run);
  }
  CHECK(parse(kAuth, {{"NO_PROXY", "kentik.com,10.0.0.0/8,*"}}).kind == ParseOutcome::Kind::Run);
  CHECK(parse(kAuth, {{"no_proxy", "garbage/99"}}).kind == ParseOutcome::Kind::Run);  // noted, not fatal
}

TEST_CASE("http:// export URLs only with --insecure; defaults follow region and target") {
  CHECK(parse(with_auth({"--insecure", "--log-export-url", "http://127.0.0.1:8080/logs"})).kind ==
        ParseOutcome::Kind::Run);
  CHECK(parse(with_auth({"--insecure"})).kind == ParseOutcome::Kind::Run);
  auto own = parse(with_auth({"--target", "backend.example:9443"}));
  REQUIRE(own.kind == ParseOutcome::Kind::Run);
  CHECK(own.options.log_export_url == "https://backend.example/agents/v202204/logs");
  CHECK(own.options.metrics_export_url == "https://backend.example/agents/v202204/metrics");
}

TEST_CASE("the env file's name before the full parse; flags given; variables' flags") {
  auto env = [](const std::string& k) -> std::optional<std::string> {
    if (k == "KBGP_ENV_FILE") return std::string("/from/env");
    return std::nullopt;
  };
  auto none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  CHECK(env_file_argument({}, none) == std::nullopt);
  CHECK(env_file_argument({}, env) == "/from/env");
  CHECK(env_file_argument({"--env-file", "/a"}, env) == "/a");
  CHECK(env_file_argument({"-env-file=/b", "--multi", "3"}, env) == "/b");
  auto r = parse(with_auth({"-log-level=debug", "--multi", "3"}));
  REQUIRE(r.kind == ParseOutcome::Kind::Run);
  CHECK(r.flags_given == std::vector<std::string>{"log-level", "multi", "email", "token"});
  CHECK(flag_of_variable("KENTIK_LOG_LEVEL") == "log-level");
  CHECK(flag_of_variable("KENTIK_SITE") == "site-id");
  CHECK(flag_of_variable("HTTPS_PROXY") == std::nullopt);
}

TEST_CASE("every flag of --help is in the tables above") {
  std::string help = help_text();
  std::set<std::string> covered;
  for (const auto& g : kGood) covered.insert(g.flag);
  covered.insert("version");
  covered.insert("help");
  size_t pos = 0;
  while ((pos = help.find("  --", pos)) != std::string::npos) {
    size_t end = help.find_first_of(" \n", pos + 4);
    std::string flag = help.substr(pos + 4, end - pos - 4);
    INFO(flag);
    CHECK(covered.count(flag) == 1);
    pos = end;
  }
  CHECK(parse({"--version"}).kind == ParseOutcome::Kind::Version);
  CHECK(parse({"-version=true"}).kind == ParseOutcome::Kind::Version);
  CHECK(parse({"-help"}).kind == ParseOutcome::Kind::Help);
  CHECK(parse({"--help"}).kind == ParseOutcome::Kind::Help);
}
