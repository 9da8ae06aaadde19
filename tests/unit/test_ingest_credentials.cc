// kbgp-ingest credentials file and token checks.
#include <catch2/catch.hpp>

#include "ingest/credentials.h"

using Catch::Matchers::Contains;
using kbgp::ingest::constant_time_equal;
using kbgp::ingest::Credentials;

namespace {
std::string parse_error(const std::string& text) {
  std::string error;
  CHECK_FALSE(Credentials::parse(text, &error).has_value());
  return error;
}
}  // namespace

TEST_CASE("credentials: good file, right and wrong pairs", "[ingest][credentials]") {
  std::string error;
  auto creds = Credentials::parse(R"({"credentials": [
      {"email": "demo@example.com", "token": "s3cret"},
      {"email": "demo@example.com", "token": "rotated"},
      {"email": "ops@example.com", "token": "other"}]})",
                                  &error);
  REQUIRE(creds.has_value());
  CHECK(creds->size() == 3);
  CHECK(creds->check("demo@example.com", "s3cret"));
  CHECK(creds->check("demo@example.com", "rotated"));
  CHECK(creds->check("ops@example.com", "other"));
  CHECK_FALSE(creds->check("demo@example.com", "other"));  // another caller's token
  CHECK_FALSE(creds->check("demo@example.com", "s3cre"));  // prefix
  CHECK_FALSE(creds->check("demo@example.com", "s3cret1"));
  CHECK_FALSE(creds->check("demo@example.com", "S3CRET"));
  CHECK_FALSE(creds->check("DEMO@example.com", "s3cret"));
  CHECK_FALSE(creds->check("demo@example.com", ""));
  CHECK_FALSE(creds->check("", "s3cret"));
  CHECK_FALSE(creds->check("nobody@example.com", "s3cret"));
  CHECK_FALSE(creds->check(std::string("demo@example.com\0", 17), "s3cret"));
}

TEST_CASE("credentials: bad files", "[ingest][credentials]") {
  CHECK_THAT(parse_error("not json"), Contains("line 1"));
  CHECK_THAT(parse_error(R"({"credentials": []})"), Contains("empty"));
  CHECK_THAT(parse_error(R"({})"), Contains("missing field \"credentials\""));
  CHECK_THAT(parse_error(R"({"credentials": [{"email": "a@b"}]})"),
             Contains("credentials[0]") && Contains("missing field \"token\""));
  CHECK_THAT(parse_error(R"({"credentials": [{"email": "", "token": "t"}]})"),
             Contains("\"email\" must not be empty"));
  CHECK_THAT(parse_error(R"({"credentials": [{"email": "a@b", "token": ""}]})"),
             Contains("\"token\" must not be empty"));
  CHECK_THAT(parse_error(R"({"credentials": [{"email": "a@b", "token": "t", "tokn": "x"}]})"),
             Contains("unknown field \"tokn\""));
  CHECK_THAT(parse_error(R"({"credentials": [{"email": "a@b", "token": 5}]})"),
             Contains("\"token\" must be a string"));
  std::string error;
  CHECK_FALSE(Credentials::load("/nonexistent/creds.json", &error).has_value());
  CHECK_THAT(error, Contains("/nonexistent/creds.json"));
}

TEST_CASE("constant_time_equal compares exactly", "[ingest][credentials]") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "ab"));
  CHECK_FALSE(constant_time_equal("ab", "abc"));
  CHECK_FALSE(constant_time_equal("", "a"));
  CHECK_FALSE(constant_time_equal(std::string_view("a\0", 2), "a"));
}
