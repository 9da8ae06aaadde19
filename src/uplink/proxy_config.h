// Web proxy settings from the environment, as the env file documents them:
// HTTPS_PROXY / HTTP_PROXY (uppercase first, then lowercase) and NO_PROXY /
// no_proxy. No I/O here; the supervisor uses it to refuse a bad value at
// start, the uplink to decide how each connection goes out.
//
// Why kbgp does this itself: gRPC reads only the lowercase names and, when
// the password holds an '@' (even as %40), silently connects directly
// (../shared/reference/grpc-cpp-facts.md). So the uplink never lets gRPC
// see a proxy variable; gRPC talks to a relay inside the uplink
// (proxy_relay.h) and the relay talks to the operator's proxy.
//
// URL form: [http://][user[:password]@]host[:port][/], port 80 when left
// out. User and password are percent-decoded ("p%40ss" is "p@ss"); an '@'
// left unencoded in the password still works (the last '@' ends the user
// information, as in Go's net/url). https:// (TLS to the proxy) and SOCKS
// are refused with a clear message.
//
// Which variable applies: for the gRPC target and https:// export URLs the
// first set of HTTPS_PROXY, https_proxy, HTTP_PROXY, http_proxy; for an
// http:// export URL HTTP_PROXY, then http_proxy. Uppercase wins when both
// spellings are set (as in Go, the vendor's agent's language).
//
// NO_PROXY: comma-separated; "*" matches everything; "example.com" matches
// that host and every name under it, ".example.com" (or "*.example.com")
// only names under it; "host:port" also needs the port to match; an IP
// address matches that address, "10.0.0.0/8" or "fd00::/8" every address
// in the block (targets given as IP addresses; names are not resolved for
// this). Comparison ignores case and a trailing dot. Loopback targets are
// not exempt by themselves: list them if they must not use the proxy.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbgp::uplink {

struct ProxyUrl {
  std::string host;  // name or address, without brackets
  uint16_t port = 80;
  bool has_credentials = false;
  std::string user;      // percent-decoded
  std::string password;  // percent-decoded; never logged
  std::string variable;  // which environment variable it came from

  // "host:port" (IPv6 in brackets), for connecting and log lines.
  std::string host_port() const;
  // For log lines: "http://user@host:port" (never the password).
  std::string display() const;
  // The value of a Proxy-Authorization header: "Basic " + base64(user:password).
  std::string authorization() const;
};

class NoProxy {
 public:
  NoProxy() = default;
  // Never fails: an entry that cannot be understood is kept as a name
  // (which then only matches that exact name) and reported in `notes`.
  static NoProxy parse(std::string_view text, std::vector<std::string>* notes = nullptr);
  bool matches(std::string_view host, uint16_t port) const;
  bool empty() const { return !all_ && entries_.empty(); }

 private:
  struct Entry {
    enum class Kind { Domain, Address, Block } kind = Kind::Domain;
    std::string name;         // Domain: lowercase, leading '.' for "under it only"
    bool also_itself = true;  // Domain: the bare name matches too
    uint8_t addr[16] = {};    // Address/Block, IPv4 as v4-mapped
    int prefix = 128;         // Block (on the mapped form)
    uint16_t port = 0;        // 0: any port
  };
  bool all_ = false;
  std::vector<Entry> entries_;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

struct ProxySettings {
  std::optional<ProxyUrl> https;  // for TLS targets and https:// URLs
  std::optional<ProxyUrl> http;   // for http:// URLs
  NoProxy no_proxy;
  std::vector<std::string> notes;  // things worth a log line (ignored variables...)

  // The proxy a connection to host:port goes through, or nullptr for a
  // direct connection. `https`: the gRPC target or an https:// URL.
  const ProxyUrl* for_target(std::string_view host, uint16_t port, bool https) const;
};

// Reads the variables through `env`. nullopt (and `error`, naming the
// variable and what is wrong, never the password) when a set variable is
// not a usable proxy URL.
std::optional<ProxySettings> proxy_settings_from_env(const EnvLookup& env, std::string* error);

// One URL; `variable` names it in errors.
std::optional<ProxyUrl> parse_proxy_url(std::string_view text, const std::string& variable,
                                        std::string* error);

// Percent-decoding of URL user information; nullopt for a '%' that is not
// followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view text);

std::string base64_encode(std::string_view bytes);

// "host:port", "[v6]:port", or (with default_port) "host". False for an
// empty host or a bad port. The host comes back without brackets.
bool split_host_port(std::string_view text, std::string* host, uint16_t* port,
                     std::optional<uint16_t> default_port = std::nullopt);

// host:port with brackets around an IPv6 address.
std::string join_host_port(std::string_view host, uint16_t port);

// Names of every variable this reads or that the uplink must hide from
// gRPC (the lowercase ones gRPC would otherwise use on its own).
const std::vector<std::string>& proxy_variable_names();

}  // namespace kbgp::uplink
