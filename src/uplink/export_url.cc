#include "uplink/export_url.h"

#include <algorithm>

#include "uplink/proxy_config.h"

namespace kbgp::uplink {

std::string ExportUrl::host_port() const { return join_host_port(host, port); }

std::optional<ExportUrl> parse_export_url(std::string_view text, std::string* error) {
  const std::string expected = "expected http(s)://host[:port]/path";
  ExportUrl url;
  url.text = std::string(text);
  std::string_view rest = text;
  if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    url.tls = false;
    url.port = 80;
    rest.remove_prefix(7);
  } else {
    *error = expected;
    return std::nullopt;
  }
  auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    *error = "no user:password@ in an export URL (the API email and token are sent as headers)";
    return std::nullopt;
  }
  if (!split_host_port(authority, &url.host, &url.port, url.port)) {
    *error = expected + " (port 1-65535, IPv6 in brackets)";
    return std::nullopt;
  }
  bool host_ok = std::all_of(url.host.begin(), url.host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == ':' || c == '_';
  });
  if (!host_ok) {
    *error = expected + " (bad host \"" + url.host + "\")";
    return std::nullopt;
  }
  // The fragment is never sent, also after a query with no path before it
  // ("https://host?q#f"; tests/fuzz/fuzz_export_url.cc found it kept).
  path = path.substr(0, path.find('#'));
  if (path.empty()) path = "/";
  if (path.front() == '?') url.path = "/" + std::string(path);
  else url.path = std::string(path);
  for (char c : url.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      *error = expected + " (no spaces or control characters in the path)";
      return std::nullopt;
    }
  }
  return url;
}

}  // namespace kbgp::uplink
