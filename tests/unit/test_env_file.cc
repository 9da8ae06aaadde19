// The environment file re-read on SIGHUP: its parser (good and bad lines,
// systemd's quoting) and what a change between two readings means.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "supervisor/env_file.h"
#include "supervisor/env_reload.h"

using namespace kbgp;

TEST_CASE("env file: good lines and what they hold", "[env-file]") {
  struct Good {
    const char* line;
    const char* key;
    const char* value;
  };
  const Good cases[] = {
      {"KENTIK_LOG_LEVEL=debug", "KENTIK_LOG_LEVEL", "debug"},
      {"  KENTIK_SITE = 12  ", "KENTIK_SITE", "12"},
      {"A=\t  spaced value inside\t ", "A", "spaced value inside"},
      {"A=value\r", "A", "value"},
      {"A=", "A", ""},
      {"A=''", "A", ""},
      {"A='single $HOME \\n \"kept\"'", "A", "single $HOME \\n \"kept\""},
      {"A=\"double \\\" \\\\ \\` \\$ \\n\"", "A", "double \" \\ ` $ \\n"},
      {"A=un\\ quoted\\\\x", "A", "un quoted\\x"},
      {"A=a\"b'c", "A", "a\"b'c"},
      {"A=x=y=z", "A", "x=y=z"},
      {"A=# not a comment", "A", "# not a comment"},
      {"_lower_9=ok", "_lower_9", "ok"},
      {"HTTPS_PROXY=http://u:p%40ss@127.0.0.1:3128", "HTTPS_PROXY", "http://u:p%40ss@127.0.0.1:3128"},
  };
  for (const auto& c : cases) {
    INFO(c.line);
    EnvFile f = parse_env_text(std::string(c.line) + "\n");
    REQUIRE(f.errors.empty());
    REQUIRE(f.values.size() == 1);
    CHECK(f.values.begin()->first == c.key);
    CHECK(f.values.begin()->second == c.value);
  }
}

TEST_CASE("env file: comments, blank lines, the sample file, last one wins", "[env-file]") {
  EnvFile f = parse_env_text(
      "# comment\n"
      "   ; also a comment\n"
      "\n"
      "  \t\r\n"
      "KENTIK_API_EMAIL=ops@example.com\n"
      "#KENTIK_REGION=fra1\n"
      "KENTIK_LOG_LEVEL=info\n"
      "KENTIK_LOG_LEVEL=debug\n"
      "KBGP_OPTS=--listen 0.0.0.0:179,[::]:179");  // no final newline
  REQUIRE(f.errors.empty());
  CHECK(f.values == EnvValues{{"KENTIK_API_EMAIL", "ops@example.com"},
                              {"KENTIK_LOG_LEVEL", "debug"},
                              {"KBGP_OPTS", "--listen 0.0.0.0:179,[::]:179"}});
  CHECK(parse_env_text("").values.empty());
  CHECK(parse_env_text("").errors.empty());
}

TEST_CASE("env file: bad lines name line and key, never the value; nothing is kept",
          "[env-file]") {
  struct Bad {
    const char* line;
    const char* key;      // named in the error, "" when not known
    const char* mentions;
  };
  const Bad cases[] = {
      {"JUSTAWORD", "", "no '='"},
      {"export KENTIK_SITE=1", "", "not a variable name"},
      {"1ABC=x", "", "not a variable name"},
      {"A-B=x", "", "not a variable name"},
      {"=secretvalue", "", "not a variable name"},
      {"KENTIK_API_TOKEN='secretvalue", "KENTIK_API_TOKEN", "unterminated single quote"},
      {"KENTIK_API_TOKEN=\"secretvalue", "KENTIK_API_TOKEN", "unterminated double quote"},
      {"KENTIK_API_TOKEN=\"secret\"value", "KENTIK_API_TOKEN", "after the closing quote"},
      {"KENTIK_API_TOKEN='secret'  x", "KENTIK_API_TOKEN", "after the closing quote"},
      {"KENTIK_API_TOKEN=\"secret\\\"", "KENTIK_API_TOKEN", "unterminated double quote"},
      {"KENTIK_API_TOKEN=secretvalue\\", "KENTIK_API_TOKEN", "trailing backslash"},
  };
  for (const auto& c : cases) {
    INFO(c.line);
    EnvFile f = parse_env_text(std::string("GOOD=1\n") + c.line + "\nALSO_GOOD=2\n");
    REQUIRE(f.errors.size() == 1);
    CHECK(f.errors[0].line == 2);
    CHECK(f.errors[0].key == c.key);
    std::string text = describe(f.errors[0]);
    CHECK_THAT(text, Catch::Contains(c.mentions) && Catch::StartsWith("line 2"));
    CHECK_THAT(text, !Catch::Contains("secret"));
    CHECK(f.values.empty());  // a file with an error applies nothing
  }
  EnvFile nul = parse_env_text(std::string("A=x\0y\n", 6));
  REQUIRE(nul.errors.size() == 1);
  CHECK_THAT(describe(nul.errors[0]), Catch::Contains("NUL"));
  EnvFile big = parse_env_text(std::string(kMaxEnvFileBytes + 1, '#'));
  REQUIRE(big.errors.size() == 1);
  CHECK(big.errors[0].line == 0);
  // One error per bad line, the first 20 of them listed.
  CHECK(parse_env_text("a\nb\nC=1\nd\n").errors.size() == 3);
  std::string many;
  for (int i = 0; i < 25; ++i) many += "bad line\n";
  EnvFile capped = parse_env_text(many);
  REQUIRE(capped.errors.size() == 21);
  CHECK(capped.errors[19].line == 20);
  CHECK(describe(capped.errors[20]) == "file: and 5 more bad lines");
}

TEST_CASE("env file: read from disk; a missing file is empty, not an error", "[env-file]") {
  char path[] = "/tmp/kbgp-env-file-test-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  std::string text = "KENTIK_LOG_LEVEL=debug\n";
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  EnvFile f = read_env_file(path);
  CHECK(f.errors.empty());
  CHECK_FALSE(f.missing);
  CHECK(f.values == EnvValues{{"KENTIK_LOG_LEVEL", "debug"}});
  ::unlink(path);
  EnvFile gone = read_env_file(path);
  CHECK(gone.missing);
  CHECK(gone.errors.empty());
  EnvFile dir = read_env_file("/tmp");
  REQUIRE(dir.errors.size() == 1);
  CHECK_THAT(describe(dir.errors[0]), Catch::Contains("not a regular file"));
}

TEST_CASE("env reload: what each change means", "[env-file]") {
  using K = EnvChange::Kind;
  const EnvValues start = {{"KENTIK_LOG_LEVEL", "info"},
                           {"KENTIK_API_TOKEN", "t1"},
                           {"KENTIK_SITE", "1"},
                           {"HTTPS_PROXY", "http://p:3128"},
                           {"UNRELATED", "a"}};
  struct Case {
    const char* what;
    EnvValues applied;
    EnvValues now;
    std::vector<std::string> flags;
    std::vector<std::pair<std::string, K>> expect;
  };
  auto with = [&](EnvValues base, const std::string& k, const char* v) {
    if (v) base[k] = v;
    else base.erase(k);
    return base;
  };
  const std::vector<Case> cases = {
      {"nothing changed", start, start, {}, {}},
      {"log level: applied", start, with(start, "KENTIK_LOG_LEVEL", "debug"), {},
       {{"KENTIK_LOG_LEVEL", K::Applied}}},
      {"log level removed: applied (back to the default)", start,
       with(start, "KENTIK_LOG_LEVEL", nullptr), {}, {{"KENTIK_LOG_LEVEL", K::Applied}}},
      {"log level added", with(start, "KENTIK_LOG_LEVEL", nullptr), start, {},
       {{"KENTIK_LOG_LEVEL", K::Applied}}},
      {"log level: the flag on the command line wins", start,
       with(start, "KENTIK_LOG_LEVEL", "debug"), {"email", "log-level"},
       {{"KENTIK_LOG_LEVEL", K::OverriddenByFlag}}},
      {"log level applied before: no change now", with(start, "KENTIK_LOG_LEVEL", "debug"),
       with(start, "KENTIK_LOG_LEVEL", "debug"), {}, {}},
      {"token: needs a restart", start, with(start, "KENTIK_API_TOKEN", "t2"), {},
       {{"KENTIK_API_TOKEN", K::NeedsRestart}}},
      {"token changed at an earlier SIGHUP: still needs a restart",
       with(start, "KENTIK_API_TOKEN", "t2"), with(start, "KENTIK_API_TOKEN", "t2"), {},
       {{"KENTIK_API_TOKEN", K::NeedsRestart}}},
      {"token changed back: nothing pending", with(start, "KENTIK_API_TOKEN", "t2"), start, {}, {}},
      {"site: the flag wins", start, with(start, "KENTIK_SITE", "2"), {"site-id"},
       {{"KENTIK_SITE", K::OverriddenByFlag}}},
      {"proxy removed: needs a restart", start, with(start, "HTTPS_PROXY", nullptr), {},
       {{"HTTPS_PROXY", K::NeedsRestart}}},
      {"KBGP_OPTS added: needs a restart", start, with(start, "KBGP_OPTS", "--multi 3"), {},
       {{"KBGP_OPTS", K::NeedsRestart}}},
      {"unknown variable", start, with(start, "UNRELATED", "b"), {},
       {{"UNRELATED", K::Unused}}},
      {"several, sorted by key", start,
       with(with(start, "KENTIK_LOG_LEVEL", "warn"), "KENTIK_REGION", "fra1"), {},
       {{"KENTIK_LOG_LEVEL", K::Applied}, {"KENTIK_REGION", K::NeedsRestart}}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto got = env_changes(start, c.applied, c.now, c.flags);
    std::vector<std::pair<std::string, K>> summary;
    for (const auto& g : got) summary.emplace_back(g.key, g.kind);
    CHECK(summary == c.expect);
  }
  auto level = env_changes(start, start, with(start, "KENTIK_LOG_LEVEL", "debug"), {});
  REQUIRE(level.size() == 1);
  CHECK(level[0].flag == "log-level");
  CHECK(changes_at_run_time("KENTIK_LOG_LEVEL"));
  CHECK_FALSE(changes_at_run_time("KENTIK_API_TOKEN"));
}
