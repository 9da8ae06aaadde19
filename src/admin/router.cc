#include "admin/router.h"

#include "admin/metrics_text.h"
#include "admin/status_json.h"

namespace kbgp::admin {

namespace {

constexpr const char* kJsonType = "application/json";
constexpr std::string_view kSessionsPrefix = "/admin/sessions/";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

HttpResponse json_response(int code, const char* reason, const json_t* body, bool pretty) {
  HttpResponse r;
  r.code = code;
  r.reason = reason;
  r.content_type = kJsonType;
  r.body = dump_json(body, pretty);
  return r;
}

HttpResponse error(int code, const char* reason, std::string_view message) {
  Json body = error_json(message);
  return json_response(code, reason, body.get(), false);
}

}  // namespace

bool split_target(std::string_view target, std::string* path, std::string* query) {
  // Absolute-form ("http://host/path") is legal in a request line; the
  // authority is of no interest here.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      target.remove_prefix(scheme.size());
      size_t slash = target.find('/');
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      break;
    }
  }
  if (target.empty() || target[0] != '/') return false;
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  *query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  size_t hash = query->find('#');
  if (hash != std::string::npos) query->resize(hash);
  path->clear();
  for (size_t i = 0; i < raw_path.size(); ++i) {
    char c = raw_path[i];
    if (c == '#') break;
    if (c == '%') {
      if (i + 2 >= raw_path.size()) return false;
      int hi = hex_value(raw_path[i + 1]);
      int lo = hex_value(raw_path[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    *path += c;
  }
  return true;
}

bool wants_pretty(std::string_view query) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    if (key == "pretty") return value != "0" && value != "false";
  }
  return false;
}

HttpResponse route(const HttpRequest& request, const shm::ControlRegion& region,
                   const HealthMonitor& health, const Now& now) {
  std::string path;
  std::string query;
  if (!split_target(request.target, &path, &query))
    return error(400, "Bad Request", "malformed request target");
  // One trailing slash is forgiven ("/admin/status/").
  if (path.size() > 1 && path.back() == '/') path.pop_back();

  bool known = path == "/hc" || path == "/admin/status" || path == "/admin/sessions" ||
               path == "/metrics" ||
               (path.size() > kSessionsPrefix.size() &&
                path.compare(0, kSessionsPrefix.size(), kSessionsPrefix) == 0);
  if (!known) return error(404, "Not Found", "no such path: " + path);
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = error(405, "Method Not Allowed", "method " + request.method + " not allowed");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (request.has_body) return error(400, "Bad Request", "a GET request takes no body");

  bool pretty = wants_pretty(query);
  if (path == "/hc") {
    HealthReport report = health.report(now);
    Json body = health_json(report, now);
    bool ok = std::string_view(report.status) == "ok";
    return json_response(ok ? 200 : 503, ok ? "OK" : "Service Unavailable", body.get(), pretty);
  }
  if (path == "/admin/status") {
    Json body = status_json(region, now);
    return json_response(200, "OK", body.get(), pretty);
  }
  if (path == "/admin/sessions") {
    Json body = sessions_json(region, now);
    return json_response(200, "OK", body.get(), pretty);
  }
  if (path == "/metrics") {
    HttpResponse r;
    r.code = 200;
    r.reason = "OK";
    r.content_type = kMetricsContentType;
    r.body = metrics_text(region, now);
    return r;
  }
  // /admin/sessions/<device-ip>, the address bare or in brackets.
  std::string address = path.substr(kSessionsPrefix.size());
  if (address.size() > 2 && address.front() == '[' && address.back() == ']')
    address = address.substr(1, address.size() - 2);
  auto device = Endpoint::parse_address(address);
  if (!device) return error(400, "Bad Request", "not an IP address: " + address);
  Json body = session_detail_json(region, *device, now);
  if (!body) return error(404, "Not Found", "no session from " + address);
  return json_response(200, "OK", body.get(), pretty);
}

}  // namespace kbgp::admin
