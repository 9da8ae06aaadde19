// libFuzzer target: the web proxy variables (uplink/proxy_config.h):
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY and their lowercase spellings, as the
// supervisor checks them at start and the uplink uses them per connection.
// Checks: a refused value says which variable; an accepted proxy URL has a
// host and a port 1-65535, never shows its password, survives being
// written back (credentials percent-encoded) and read again, and its
// Basic credentials decode to user:password; NO_PROXY exempts what it
// lists; host:port splitting round-trips.
//
// Input: environment lines NAME=value; a line "@host:port" is a
// destination to route (as the gRPC target or an export URL's host).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_input.h"
#include "uplink/proxy_config.h"

using namespace kbgp;
using namespace kbgp::uplink;

namespace {

std::string percent_encode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string decode_base64(std::string_view in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    FUZZ_CHECK(v != std::string::npos);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

void check_url(const ProxyUrl& url) {
  FUZZ_CHECK(!url.host.empty() && url.port != 0);
  FUZZ_CHECK(!url.variable.empty());
  std::string shown = url.display();
  if (url.has_credentials) {
    FUZZ_CHECK(!url.user.empty());
    // After the scheme, "user@host:port": no ":password@" anywhere.
    FUZZ_CHECK(shown.rfind("http://", 0) == 0);
    FUZZ_CHECK(shown.find(":" + url.password + "@", 7) == std::string::npos);
    std::string auth = url.authorization();
    FUZZ_CHECK(auth.rfind("Basic ", 0) == 0);
    FUZZ_CHECK(decode_base64(auth.substr(6)) == url.user + ":" + url.password);
  }
  // Written back in the documented form and read again.
  std::string text = "http://";
  if (url.has_credentials)
    text += percent_encode(url.user) + ":" + percent_encode(url.password) + "@";
  text += url.host_port();
  std::string error;
  auto again = parse_proxy_url(text, url.variable, &error);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->host == url.host && again->port == url.port &&
             again->has_credentials == url.has_credentials && again->user == url.user &&
             again->password == url.password);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // NAME=value lines in input order; the last one of a name counts. A
  // vector, not a map: the harness's own tree code would add coverage that
  // rewards the fuzzer for nothing in the code under test.
  std::vector<std::pair<std::string, std::string>> env;
  auto value_of = [&env](const std::string& name) -> std::optional<std::string> {
    for (auto it = env.rbegin(); it != env.rend(); ++it)
      if (it->first == name) return it->second;
    return std::nullopt;
  };
  std::vector<std::string> destinations;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line[0] == '@') {
      destinations.emplace_back(line.substr(1));
      continue;
    }
    size_t eq = line.find('=');
    if (eq != std::string_view::npos)
      env.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  std::string error;
  auto settings = proxy_settings_from_env(value_of, &error);
  if (!settings) {
    FUZZ_CHECK(error.rfind("$", 0) == 0);  // names the variable
    return 0;
  }
  if (settings->https) check_url(*settings->https);
  if (settings->http) check_url(*settings->http);
  if (settings->http) FUZZ_CHECK(settings->https.has_value());

  for (const auto& destination : destinations) {
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(destination, &host, &port, 443)) continue;
    FUZZ_CHECK(!host.empty() && port != 0);
    std::string joined = join_host_port(host, port);
    std::string host2;
    uint16_t port2 = 0;
    FUZZ_CHECK(split_host_port(joined, &host2, &port2));
    FUZZ_CHECK(host2 == host && port2 == port);
    for (bool https : {true, false}) {
      const ProxyUrl* via = settings->for_target(host, port, https);
      const auto& chosen = https ? settings->https : settings->http;
      if (!chosen) FUZZ_CHECK(via == nullptr);
      if (settings->no_proxy.matches(host, port)) FUZZ_CHECK(via == nullptr);
      else if (chosen) FUZZ_CHECK(via == &*chosen);
    }
  }
  // An exemption for everything exempts every destination.
  auto no_proxy = value_of("NO_PROXY");
  NoProxy all = NoProxy::parse(no_proxy ? *no_proxy + ",*" : "*");
  FUZZ_CHECK(all.matches("grpc.example.com", 443) && !all.empty());
  return 0;
}
