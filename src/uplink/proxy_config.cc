#include "uplink/proxy_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace kbgp::uplink {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// IPv4 (as v4-mapped) or IPv6 into 16 bytes.
bool parse_address(std::string_view text, uint8_t out[16]) {
  std::string s(text);
  in_addr v4{};
  if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    std::memcpy(out + 12, &v4, 4);
    return true;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out, &v6, 16);
    return true;
  }
  return false;
}

bool is_v4_mapped(const uint8_t a[16]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, prefix, 12) == 0;
}

bool same_prefix(const uint8_t a[16], const uint8_t b[16], int bits) {
  int full = bits / 8;
  if (std::memcmp(a, b, static_cast<size_t>(full)) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

bool valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n == 0 || n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

std::string strip_trailing_dot(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int hi = hex_value(text[i + 1]);
    int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                 static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool split_host_port(std::string_view text, std::string* host, uint16_t* port,
                     std::optional<uint16_t> default_port) {
  std::string_view h;
  std::string_view p;
  bool have_port = false;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return false;
    h = text.substr(1, close - 1);
    std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      p = after.substr(1);
      have_port = true;
    }
    uint8_t addr[16];
    if (!parse_address(h, addr) || is_v4_mapped(addr) ||
        std::string_view(h).find(':') == std::string_view::npos)
      return false;
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      if (text.find(':') != colon) return false;  // a bare IPv6 address needs brackets
      h = text.substr(0, colon);
      p = text.substr(colon + 1);
      have_port = true;
    } else {
      h = text;
    }
  }
  if (h.empty()) return false;
  if (have_port) {
    auto n = parse_port(p);
    if (!n) return false;
    *port = *n;
  } else {
    if (!default_port) return false;
    *port = *default_port;
  }
  *host = std::string(h);
  return true;
}

std::string join_host_port(std::string_view host, uint16_t port) {
  std::string h(host);
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return h + ":" + std::to_string(port);
}

std::string ProxyUrl::host_port() const { return join_host_port(host, port); }

std::string ProxyUrl::display() const {
  std::string out = "http://";
  if (has_credentials) out += user + "@";
  return out + host_port();
}

std::string ProxyUrl::authorization() const {
  return "Basic " + base64_encode(user + ":" + password);
}

std::optional<ProxyUrl> parse_proxy_url(std::string_view text, const std::string& variable,
                                        std::string* error) {
  auto fail = [&](const std::string& what) -> std::optional<ProxyUrl> {
    *error = "$" + variable + ": " + what;
    return std::nullopt;
  };
  std::string_view s = trim(text);
  if (s.empty()) return fail("empty proxy URL");
  auto scheme_end = s.find("://");
  if (scheme_end != std::string_view::npos) {
    std::string scheme = lower(s.substr(0, scheme_end));
    if (scheme == "https")
      return fail("https:// proxies (TLS to the proxy) are not supported; use http://host:port "
                  "(the tunnel through it is TLS anyway)");
    if (scheme.rfind("socks", 0) == 0)
      return fail("SOCKS proxies are not supported; use an HTTP CONNECT proxy (http://host:port)");
    if (scheme != "http")
      return fail("unknown proxy scheme \"" + scheme + "://\"; expected http://[user:password@]host:port");
    s.remove_prefix(scheme_end + 3);
  }
  // The authority ends at the first '/', '?' or '#' after the user
  // information; the path is ignored. User information may hold a raw '/'
  // only percent-encoded, like any URL.
  auto at = s.rfind('@');
  std::string_view userinfo;
  std::string_view rest = s;
  bool has_userinfo = false;
  if (at != std::string_view::npos) {
    userinfo = s.substr(0, at);
    rest = s.substr(at + 1);
    has_userinfo = true;
  }
  auto end = rest.find_first_of("/?#");
  std::string_view path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  std::string_view authority = rest.substr(0, end);
  if (!path.empty() && path != "/")
    return fail("a proxy URL has no path (got \"" + std::string(path) + "\")");
  ProxyUrl url;
  url.variable = variable;
  if (!split_host_port(authority, &url.host, &url.port, 80))
    return fail("expected http://[user:password@]host:port, with a port 1-65535 and IPv6 "
                "addresses in brackets");
  uint8_t addr[16];
  if (!parse_address(url.host, addr) && !valid_host_name(url.host))
    return fail("\"" + url.host + "\" is not a host name or IP address");
  if (has_userinfo) {
    auto colon = userinfo.find(':');
    std::string_view user = userinfo.substr(0, colon);
    std::string_view password =
        colon == std::string_view::npos ? std::string_view() : userinfo.substr(colon + 1);
    auto u = percent_decode(user);
    if (!u) return fail("bad percent-encoding in the user name (write '%' as %25)");
    auto p = percent_decode(password);
    if (!p) return fail("bad percent-encoding in the password (write '%' as %25)");
    if (u->empty()) return fail("empty user name before '@'");
    if (u->find(':') != std::string::npos)
      return fail("the user name holds a ':' (percent-encoded as %3A): Basic authentication "
                  "cannot carry it");
    for (char c : *u + *p)
      if (c == '\r' || c == '\n' || c == '\0')
        return fail("the user name or password holds a line break or NUL");
    url.has_credentials = true;
    url.user = std::move(*u);
    url.password = std::move(*p);
  }
  return url;
}

NoProxy NoProxy::parse(std::string_view text, std::vector<std::string>* notes) {
  NoProxy np;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string item = lower(trim(text.substr(start, comma - start)));
    start = comma + 1;
    if (item.empty()) continue;
    if (item == "*") {
      np.all_ = true;
      continue;
    }
    Entry e;
    auto slash = item.find('/');
    if (slash != std::string::npos) {
      std::string addr = item.substr(0, slash);
      std::string bits = item.substr(slash + 1);
      bool ok = parse_address(addr, e.addr) && !bits.empty() && bits.size() <= 3 &&
                std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; });
      int n = ok ? std::stoi(bits) : -1;
      bool v4 = addr.find(':') == std::string::npos;
      if (ok && n >= 0 && n <= (v4 ? 32 : 128)) {
        e.kind = Entry::Kind::Block;
        e.prefix = v4 ? n + 96 : n;
        np.entries_.push_back(e);
      } else if (notes) {
        notes->push_back("NO_PROXY entry \"" + item + "\" is not an address block; ignored");
      }
      continue;
    }
    // An address alone, a bracketed IPv6 address with or without a port,
    // or a name with or without a port.
    if (parse_address(item, e.addr)) {
      e.kind = Entry::Kind::Address;
      np.entries_.push_back(e);
      continue;
    }
    std::string host;
    uint16_t port = 0;
    if (split_host_port(item, &host, &port, std::nullopt)) {
      e.port = port;
    } else if (item.size() > 2 && item.front() == '[' && item.back() == ']') {
      host = item.substr(1, item.size() - 2);
    } else {
      host = item;
    }
    if (parse_address(host, e.addr)) {
      e.kind = Entry::Kind::Address;
      np.entries_.push_back(e);
      continue;
    }
    host = strip_trailing_dot(host);
    if (host.rfind("*.", 0) == 0) host.erase(0, 1);
    e.kind = Entry::Kind::Domain;
    if (!host.empty() && host.front() == '.') {  // "." alone strips to ""
      e.also_itself = false;
      e.name = host;
    } else {
      e.name = "." + host;
    }
    if (e.name.size() < 2 || !valid_host_name(e.name.substr(1))) {
      if (notes) notes->push_back("NO_PROXY entry \"" + item + "\" is not a host name; ignored");
      continue;
    }
    np.entries_.push_back(e);
  }
  return np;
}

bool NoProxy::matches(std::string_view host_in, uint16_t port) const {
  if (all_) return true;
  std::string host = strip_trailing_dot(lower(host_in));
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  uint8_t addr[16];
  bool is_address = parse_address(host, addr);
  for (const auto& e : entries_) {
    if (e.port != 0 && e.port != port) continue;
    switch (e.kind) {
      case Entry::Kind::Address:
        if (is_address && std::memcmp(addr, e.addr, 16) == 0) return true;
        break;
      case Entry::Kind::Block:
        if (is_address && same_prefix(addr, e.addr, e.prefix)) return true;
        break;
      case Entry::Kind::Domain:
        if (is_address) break;
        if (host.size() > e.name.size() && host.ends_with(e.name)) return true;
        if (e.also_itself && host == std::string_view(e.name).substr(1)) return true;
        break;
    }
  }
  return false;
}

const ProxyUrl* ProxySettings::for_target(std::string_view host, uint16_t port, bool use_https) const {
  const std::optional<ProxyUrl>& chosen = use_https ? https : http;
  if (!chosen) return nullptr;
  if (no_proxy.matches(host, port)) return nullptr;
  return &*chosen;
}

const std::vector<std::string>& proxy_variable_names() {
  static const std::vector<std::string> kNames = {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                                                  "http_proxy",  "NO_PROXY",    "no_proxy",
                                                  "grpc_proxy",  "no_grpc_proxy"};
  return kNames;
}

std::optional<ProxySettings> proxy_settings_from_env(const EnvLookup& env, std::string* error) {
  ProxySettings s;
  // The first of `names` that is set and not empty; a different value in a
  // later (lowercase) spelling is worth a note.
  auto first = [&](std::initializer_list<const char*> names,
                   std::string* which) -> std::optional<std::string> {
    std::optional<std::string> found;
    for (const char* n : names) {
      auto v = env(n);
      if (!v || trim(*v).empty()) continue;
      if (!found) {
        found = v;
        *which = n;
      } else if (*v != *found) {
        s.notes.push_back("$" + std::string(n) + " differs from $" + *which + "; using $" + *which);
      }
    }
    return found;
  };
  std::string https_var, http_var, no_var;
  auto https_text = first({"HTTPS_PROXY", "https_proxy"}, &https_var);
  auto http_text = first({"HTTP_PROXY", "http_proxy"}, &http_var);
  if (http_text) {
    auto url = parse_proxy_url(*http_text, http_var, error);
    if (!url) return std::nullopt;
    s.http = std::move(url);
  }
  if (https_text) {
    auto url = parse_proxy_url(*https_text, https_var, error);
    if (!url) return std::nullopt;
    s.https = std::move(url);
  } else if (s.http) {
    s.https = s.http;  // as gRPC does: HTTP_PROXY serves TLS targets too
  }
  if (auto no = first({"NO_PROXY", "no_proxy"}, &no_var)) s.no_proxy = NoProxy::parse(*no, &s.notes);
  for (const char* ignored : {"grpc_proxy", "no_grpc_proxy"})
    if (auto v = env(ignored); v && !v->empty())
      s.notes.push_back("$" + std::string(ignored) + " is ignored; kbgp uses HTTPS_PROXY, "
                        "HTTP_PROXY and NO_PROXY");
  return s;
}

}  // namespace kbgp::uplink
