// libFuzzer target: the CONNECT exchange (uplink/proxy_http.h): the
// operator's proxy's response head, and gRPC's CONNECT request to the
// uplink's relay. Checks: a head ends at its first blank line; status and
// text taken from a response are in range and printable; a CONNECT request
// the uplink writes for a valid target reads back as that target with its
// credentials.
//
// Input: bytes as they arrive from the proxy (or from gRPC); their first
// line, when it is a valid host:port, is also used as a CONNECT target.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "uplink/proxy_config.h"
#include "uplink/proxy_http.h"

using namespace kbgp;
using namespace kbgp::uplink;

namespace {

bool printable(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view buffer(reinterpret_cast<const char*>(data), size);
  size_t length = head_length(buffer);
  FUZZ_CHECK(length <= buffer.size());
  std::string_view head = length ? buffer.substr(0, length) : buffer.substr(0, kMaxHeadBytes);
  if (length) {
    FUZZ_CHECK(head.ends_with("\n\n") || head.ends_with("\r\n\r\n"));
    FUZZ_CHECK(head_length(head.substr(0, length - 1)) == 0);  // the first blank line
  }

  if (auto response = parse_response_head(head)) {
    FUZZ_CHECK(response->status >= 0 && response->status <= 999);
    FUZZ_CHECK(head.substr(0, 7) == "HTTP/1.");
    FUZZ_CHECK(response->reason.size() <= 120 && printable(response->reason));
    FUZZ_CHECK(response->proxy_authenticate.size() <= 200 &&
               printable(response->proxy_authenticate));
    FUZZ_CHECK(!proxy_status_hint(response->status).empty());
  }
  if (auto request = parse_connect_request(head)) {
    FUZZ_CHECK(!request->target.empty() && printable(request->target));
    FUZZ_CHECK(request->target.find(' ') == std::string::npos);
  }

  // The uplink's own CONNECT, for a target it would accept.
  std::string_view first = buffer.substr(0, buffer.find('\n'));
  std::string host;
  uint16_t port = 0;
  if (split_host_port(first, &host, &port)) {
    std::string target = join_host_port(host, port);
    std::string error;
    auto proxy = parse_proxy_url("http://kbgp:p%40ss%3Aword@127.0.0.1:3128", "HTTPS_PROXY", &error);
    FUZZ_CHECK(proxy.has_value());
    // The uplink connects only to host names and addresses (its target and
    // export URLs are checked at start).
    bool host_like = std::all_of(host.begin(), host.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '.' || c == '_' || c == ':';
    });
    if (host_like) {
      std::string request = connect_request(target, *proxy, "kbgp/0.1.0");
      FUZZ_CHECK(head_length(request) == request.size());
      auto parsed = parse_connect_request(request);
      FUZZ_CHECK(parsed && parsed->target == target &&
                 parsed->authorization == proxy->authorization());
    }
  }
  return 0;
}
