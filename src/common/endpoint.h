// A TCP endpoint (address + port) in a fixed-size form that can live in
// shared memory and in typed IPC messages.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

namespace kbgp {

struct Endpoint {
  uint16_t family = 0;  // AF_INET or AF_INET6; 0 = unset
  uint16_t port = 0;    // host byte order
  uint8_t addr[16] = {};  // IPv4 in the first 4 bytes

  static Endpoint from_sockaddr(const sockaddr* sa);
  // Parses "1.2.3.4:179", "[::1]:179"; `default_port` when no port is given
  // and allow_no_port is true. Returns nullopt on any error.
  static std::optional<Endpoint> parse(const std::string& text, bool allow_no_port = false,
                                       uint16_t default_port = 0);
  // Parses a bare address ("1.2.3.4", "::1") with port 0.
  static std::optional<Endpoint> parse_address(const std::string& text);

  // Fills a sockaddr_storage; returns its length.
  socklen_t to_sockaddr(sockaddr_storage* ss) const;
  // An IPv4-mapped IPv6 address (from a dual-stack socket) as plain IPv4.
  Endpoint unmapped() const;

  std::string address_string() const;  // "10.0.0.1" / "::1"
  std::string to_string() const;       // "10.0.0.1:179" / "[::1]:179"
  bool same_address(const Endpoint& other) const;
  bool operator==(const Endpoint& other) const = default;
};

}  // namespace kbgp
