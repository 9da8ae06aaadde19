// libFuzzer target: the admin's HTTP request path (admin/router.h): the
// request-target's path and query (percent-escapes, ?pretty, absolute form,
// /admin/sessions/<ip>) and the routing, rendered against a control region
// filled like a running agent's (tests/unit/admin_fixture.h). Checks: only
// the documented status codes, JSON bodies that parse, 405 with Allow, a
// path that splits the same way once written back.
//
// Input: an HTTP/1.1 request as a client sends it; the request line and a
// Content-Length or Transfer-Encoding header are read the way evhttp hands
// them to the router.
#include <jansson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../unit/admin_fixture.h"
#include "admin/health.h"
#include "admin/router.h"
#include "fuzz_input.h"

using namespace kbgp;
using namespace kbgp::admin;

namespace {

struct Agent {
  std::unique_ptr<shm::ControlRegion> region = test::make_region();
  HealthMonitor health{test::kNowMonotonic - 60 * test::kSecond};
  Agent() {
    test::set_metadata(test::add_session(*region, 3, "10.250.15.1:65411",
                                         test::kNowRealtime - 90 * test::kSecond),
                       R"({"backend-pin":["42b0e9c9"]})");
    test::add_session(*region, 70, "[2001:db8::7]:179", test::kNowRealtime - test::kSecond, 0x22);
    health.evaluate(*region, test::test_now());
  }
};

bool json_body(const std::string& body) {
  json_t* j = json_loadb(body.data(), body.size(), 0, nullptr);
  if (!j) return false;
  json_decref(j);
  return true;
}

std::string percent_encode(const std::string& path) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (c == '/' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool header_says_body(std::string_view head) {
  std::string lower;
  for (char c : head) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  size_t cl = lower.find("\ncontent-length:");
  if (cl != std::string::npos) {
    size_t v = cl + 16;
    while (v < lower.size() && lower[v] == ' ') ++v;
    if (v < lower.size() && lower[v] >= '1' && lower[v] <= '9') return true;
  }
  return lower.find("\ntransfer-encoding:") != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Agent agent;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t eol = text.find("\r\n");
  std::string_view line = text.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return 0;  // evhttp answers 400 itself
  // evhttp knows these methods and answers any other itself.
  std::string_view method = line.substr(0, sp1);
  bool known_method = false;
  for (std::string_view m : {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE",
                             "CONNECT", "PATCH"})
    known_method |= method == m;
  if (!known_method) return 0;
  HttpRequest request;
  request.method = std::string(method);
  request.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view rest = eol == std::string_view::npos ? "" : text.substr(eol);
  size_t head_end = rest.find("\r\n\r\n");
  std::string_view head = rest.substr(0, head_end);
  request.has_body = header_says_body(head) ||
                     (head_end != std::string_view::npos && rest.size() > head_end + 4);

  HttpResponse r = route(request, *agent.region, agent.health, test::test_now());
  FUZZ_CHECK(r.code == 200 || r.code == 400 || r.code == 404 || r.code == 405 || r.code == 503);
  FUZZ_CHECK(!r.reason.empty() && !r.content_type.empty());
  if (r.content_type == "application/json") FUZZ_CHECK(json_body(r.body));
  if (r.code == 405) FUZZ_CHECK(!r.headers.empty() && r.headers[0].first == "Allow");

  std::string path, query;
  bool split = split_target(request.target, &path, &query);
  if (!split) {
    FUZZ_CHECK(r.code == 400);
    return 0;
  }
  FUZZ_CHECK(!path.empty() && path[0] == '/');
  FUZZ_CHECK(path.find('\0') == std::string::npos);
  std::string path_again, query_again;
  FUZZ_CHECK(split_target(percent_encode(path), &path_again, &query_again));
  FUZZ_CHECK(path_again == path && query_again.empty());
  if (r.code == 200 || r.code == 503) {
    FUZZ_CHECK(request.method == "GET" || request.method == "HEAD");
    FUZZ_CHECK(!request.has_body);
    if (r.content_type == "application/json" && wants_pretty(query))
      FUZZ_CHECK(r.body.find('\n') != std::string::npos);
  }
  return 0;
}
