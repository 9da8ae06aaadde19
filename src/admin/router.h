// Routing of admin HTTP requests to their documents, without I/O: a request
// (method, request-target, whether it had a body) in, a complete response
// out. The libevent glue lives in http_server.cc.
//
//   GET /hc                        health (200 when ok, else 503)
//   GET /admin/status              agent details
//   GET /admin/sessions            session summary
//   GET /admin/sessions/<ip>       one session (404 when none from that ip)
//   GET /metrics                   Prometheus text
// HEAD is answered like GET (libevent leaves the body out). Other methods on
// these paths: 405 with Allow; unknown paths: 404; a bad target or a body:
// 400. Errors are JSON {"error": ...}. ?pretty indents the JSON.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/health.h"
#include "admin/snapshot.h"
#include "common/layout.h"

namespace kbgp::admin {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // request-target as received: "/admin/status?pretty"
  bool has_body = false;
};

struct HttpResponse {
  int code = 500;
  std::string reason;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond Content-Type
};

HttpResponse route(const HttpRequest& request, const shm::ControlRegion& region,
                   const HealthMonitor& health, const Now& now);

// Splits a request-target into its percent-decoded path and raw query.
// False for a target that is not origin- or absolute-form, a bad escape, or
// a NUL byte.
bool split_target(std::string_view target, std::string* path, std::string* query);
// True when the query asks for indented JSON: `pretty` present, not "0"/"false".
bool wants_pretty(std::string_view query);

}  // namespace kbgp::admin
