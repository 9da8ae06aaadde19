// Export URLs (--log-export-url, --metrics-export-url): http(s)://host[:port]/path.
// No I/O; the supervisor checks the flags with it at start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kbgp::uplink {

struct ExportUrl {
  bool tls = true;
  std::string host;  // without brackets
  uint16_t port = 443;
  std::string path;  // starts with '/', query included
  std::string text;  // as given

  std::string host_port() const;  // for Host: and CONNECT
};

// nullopt and `error` (what is expected) for anything but http:// or
// https:// with a host, an optional port 1-65535 and a path without spaces
// or control characters. No user information (credentials go in headers).
std::optional<ExportUrl> parse_export_url(std::string_view text, std::string* error);

}  // namespace kbgp::uplink
