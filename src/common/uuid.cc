#include "common/uuid.h"

#include <sys/random.h>

#include <cstdio>
#include <cstring>

namespace kbgp {

void uuid_v4(uint8_t out[16]) {
  size_t got = 0;
  while (got < 16) {
    ssize_t n = ::getrandom(out + got, 16 - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  out[6] = static_cast<uint8_t>((out[6] & 0x0f) | 0x40);  // version 4
  out[8] = static_cast<uint8_t>((out[8] & 0x3f) | 0x80);  // RFC 4122 variant
}

std::string uuid_to_string(const uint8_t id[16]) {
  char buf[37];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0],
                id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
                id[12], id[13], id[14], id[15]);
  return buf;
}

std::optional<std::string> uuid_parse(const std::string& text, uint8_t out[16]) {
  if (text.size() != 36) return std::nullopt;
  size_t j = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(text[i]), lo = hex(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[j++] = static_cast<uint8_t>(hi * 16 + lo);
    i += 2;
  }
  return text;
}

}  // namespace kbgp
