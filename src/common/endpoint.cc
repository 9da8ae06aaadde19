#include "common/endpoint.h"

#include <arpa/inet.h>

#include <cstring>

namespace kbgp {

Endpoint Endpoint::from_sockaddr(const sockaddr* sa) {
  Endpoint e;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    e.family = AF_INET;
    e.port = ntohs(in->sin_port);
    std::memcpy(e.addr, &in->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    e.family = AF_INET6;
    e.port = ntohs(in6->sin6_port);
    std::memcpy(e.addr, &in6->sin6_addr, 16);
  }
  return e;
}

std::optional<Endpoint> Endpoint::parse_address(const std::string& text) {
  Endpoint e;
  if (::inet_pton(AF_INET, text.c_str(), e.addr) == 1) {
    e.family = AF_INET;
    return e;
  }
  if (::inet_pton(AF_INET6, text.c_str(), e.addr) == 1) {
    e.family = AF_INET6;
    return e;
  }
  return std::nullopt;
}

std::optional<Endpoint> Endpoint::parse(const std::string& text, bool allow_no_port,
                                        uint16_t default_port) {
  std::string host;
  std::string port;
  bool has_port = false;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return std::nullopt;
      port = text.substr(close + 2);
      has_port = true;
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string::npos && text.find(':') == colon) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      has_port = true;
    } else {
      host = text;  // bare IPv4 or bare IPv6 without brackets
    }
  }
  auto e = parse_address(host);
  if (!e) return std::nullopt;
  if (!has_port) {
    if (!allow_no_port) return std::nullopt;
    e->port = default_port;
    return e;
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  unsigned long value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned long>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  e->port = static_cast<uint16_t>(value);
  return e;
}

socklen_t Endpoint::to_sockaddr(sockaddr_storage* ss) const {
  std::memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, addr, 4);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(ss);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::memcpy(&in6->sin6_addr, addr, 16);
  return sizeof(sockaddr_in6);
}

Endpoint Endpoint::unmapped() const {
  static const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family != AF_INET6 || std::memcmp(addr, kMappedPrefix, 12) != 0) return *this;
  Endpoint e;
  e.family = AF_INET;
  e.port = port;
  std::memcpy(e.addr, addr + 12, 4);
  return e;
}

std::string Endpoint::address_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    ::inet_ntop(AF_INET, addr, buf, sizeof buf);
  } else if (family == AF_INET6) {
    ::inet_ntop(AF_INET6, addr, buf, sizeof buf);
  } else {
    return "";
  }
  return buf;
}

std::string Endpoint::to_string() const {
  if (family == AF_INET6) return "[" + address_string() + "]:" + std::to_string(port);
  return address_string() + ":" + std::to_string(port);
}

bool Endpoint::same_address(const Endpoint& other) const {
  Endpoint a = unmapped();
  Endpoint b = other.unmapped();
  if (a.family != b.family) return false;
  return std::memcmp(a.addr, b.addr, a.family == AF_INET ? 4 : 16) == 0;
}

}  // namespace kbgp
