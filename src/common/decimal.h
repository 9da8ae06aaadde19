// Strict unsigned decimal parsing for flags, files and metadata: digits
// only, no sign or blanks, refused above `max` (no wrap-around).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kbgp {

inline std::optional<uint64_t> parse_decimal(const std::string& text, uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace kbgp
