// libFuzzer target: export URLs (--log-export-url, --metrics-export-url;
// uplink/export_url.h). Checks: an accepted URL has a host, a port 1-65535,
// TLS exactly for https://, a path that starts with '/' and holds no space
// or control character, and reads back the same from its parts; a refused
// one says what is expected.
//
// Input: the URL text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "uplink/export_url.h"

using namespace kbgp;
using namespace kbgp::uplink;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto url = parse_export_url(text, &error);
  if (!url) {
    FUZZ_CHECK(error.find("expected") != std::string::npos || error.find("no user") == 0);
    return 0;
  }
  FUZZ_CHECK(url->text == text);
  FUZZ_CHECK(url->tls == (text.substr(0, 8) == "https://"));
  FUZZ_CHECK(!url->host.empty() && url->port != 0);
  FUZZ_CHECK(!url->path.empty() && url->path[0] == '/');
  for (char c : url->path)
    FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f && c != '#');
  std::string rebuilt = (url->tls ? "https://" : "http://") + url->host_port() + url->path;
  auto again = parse_export_url(rebuilt, &error);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->tls == url->tls && again->host == url->host && again->port == url->port &&
             again->path == url->path);
  return 0;
}
