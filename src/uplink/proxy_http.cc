#include "uplink/proxy_http.h"

#include <algorithm>
#include <vector>

namespace kbgp::uplink {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::vector<std::string_view> lines(std::string_view head) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < head.size()) {
    size_t nl = head.find('\n', start);
    if (nl == std::string_view::npos) nl = head.size();
    std::string_view line = head.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    start = nl + 1;
  }
  return out;
}

// (name, value) of a header line; value trimmed.
bool header(std::string_view line, std::string_view* name, std::string_view* value) {
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  *name = trim(line.substr(0, colon));
  *value = trim(line.substr(colon + 1));
  return true;
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
}

}  // namespace

size_t head_length(std::string_view buffer) {
  auto crlf = buffer.find("\r\n\r\n");
  auto lf = buffer.find("\n\n");
  size_t end = std::string_view::npos;
  if (crlf != std::string_view::npos) end = crlf + 4;
  if (lf != std::string_view::npos && (end == std::string_view::npos || lf + 2 < end)) end = lf + 2;
  return end == std::string_view::npos ? 0 : end;
}

std::string connect_request(std::string_view target, const ProxyUrl& proxy,
                            std::string_view user_agent) {
  std::string out = "CONNECT ";
  out += target;
  out += " HTTP/1.1\r\nHost: ";
  out += target;
  out += "\r\n";
  if (proxy.has_credentials) out += "Proxy-Authorization: " + proxy.authorization() + "\r\n";
  out += "User-Agent: ";
  out += user_agent;
  out += "\r\n\r\n";
  return out;
}

std::optional<ResponseHead> parse_response_head(std::string_view head) {
  auto ls = lines(head);
  if (ls.empty()) return std::nullopt;
  std::string_view status_line = ls[0];
  // "HTTP/1.1 407 Proxy Authentication Required"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ')
    return std::nullopt;
  std::string_view code = status_line.substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  if (status_line.size() > 12 && status_line[12] != ' ') return std::nullopt;
  ResponseHead r;
  r.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  std::string_view reason = status_line.size() > 13 ? trim(status_line.substr(13)) : "";
  if (printable(reason)) r.reason = std::string(reason.substr(0, 120));
  for (size_t i = 1; i < ls.size(); ++i) {
    std::string_view name, value;
    if (!header(ls[i], &name, &value)) continue;
    if (iequals(name, "Proxy-Authenticate") && printable(value))
      r.proxy_authenticate = std::string(value.substr(0, 200));
  }
  return r;
}

std::optional<ConnectRequest> parse_connect_request(std::string_view head) {
  auto ls = lines(head);
  if (ls.empty()) return std::nullopt;
  std::string_view line = ls[0];
  if (line.substr(0, 8) != "CONNECT ") return std::nullopt;
  line.remove_prefix(8);
  auto space = line.find(' ');
  if (space == std::string_view::npos || space == 0) return std::nullopt;
  std::string_view version = line.substr(space + 1);
  if (version != "HTTP/1.0" && version != "HTTP/1.1") return std::nullopt;
  ConnectRequest r;
  r.target = std::string(line.substr(0, space));
  if (!printable(r.target)) return std::nullopt;
  for (size_t i = 1; i < ls.size(); ++i) {
    std::string_view name, value;
    if (!header(ls[i], &name, &value)) continue;
    if (iequals(name, "Proxy-Authorization")) r.authorization = std::string(value);
  }
  return r;
}

std::string proxy_status_hint(int status) {
  switch (status) {
    case 401:  // tinyproxy answers a failed Basic check with 401
    case 407:
      return "the proxy wants (other) credentials: check the user and password in the proxy "
             "URL; percent-encode reserved characters (@ as %40, : as %3A, % as %25)";
    case 403:
      return "the proxy forbids this destination or port (e.g. only CONNECT to 443 allowed)";
    case 400:
    case 405:
      return "the proxy does not accept CONNECT; it must be an HTTP CONNECT (tunnel) proxy";
    case 502:
    case 503:
    case 504:
      return "the proxy could not reach the destination";
    default:
      return "the proxy refused the tunnel";
  }
}

}  // namespace kbgp::uplink
