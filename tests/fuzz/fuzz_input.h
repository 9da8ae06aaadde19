// Reading a libFuzzer input as a sequence of fields. Every read is bounded
// by what is left; a read past the end yields zeros / empty, so a harness
// never needs its own length checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kbgp::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t left() const { return size_ - pos_; }

  uint8_t u8() { return empty() ? 0 : data_[pos_++]; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return u16() | (static_cast<uint32_t>(u16()) << 16); }
  uint64_t u64() { return u32() | (static_cast<uint64_t>(u32()) << 32); }

  // Up to `n` bytes (fewer at the end of the input).
  std::string_view bytes(size_t n) {
    n = std::min(n, left());
    std::string_view out(reinterpret_cast<const char*>(data_) + pos_, n);
    pos_ += n;
    return out;
  }
  // A record: a 16-bit little-endian length, then that many bytes.
  std::string_view record() { return bytes(u16()); }
  std::string_view rest() { return bytes(left()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// "key: value" lines (LF or CRLF), as gRPC metadata or an environment is
// written in the seed files; a line without ": " is a key with an empty value.
inline std::vector<std::pair<std::string, std::string>> key_value_lines(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t sep = line.find(": ");
    if (sep == std::string_view::npos)
      out.emplace_back(std::string(line), std::string());
    else
      out.emplace_back(std::string(line.substr(0, sep)), std::string(line.substr(sep + 2)));
  }
  return out;
}

// Stops the run with a crash libFuzzer records: an invariant was broken.
[[noreturn]] inline void broken(const char* what) {
  fprintf(stderr, "fuzz invariant broken: %s\n", what);
  __builtin_trap();
}
#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) ::kbgp::fuzz::broken(#cond); \
  } while (0)

}  // namespace kbgp::fuzz
