// Reading a libFuzzer input as a sequence of fields. Every read is bounded
// by what is left; a read past the end yields zeros / empty, so a harness
// never needs its own length checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <optional>
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
// Views into `text`.
inline std::vector<std::pair<std::string_view, std::string_view>> key_value_views(
    std::string_view text) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t sep = line.find(": ");
    if (sep == std::string_view::npos)
      out.emplace_back(line, std::string_view());
    else
      out.emplace_back(line.substr(0, sep), line.substr(sep + 2));
  }
  return out;
}

// The first value of each key in "key: value" lines, as gRPC hands a server
// the first value of a repeated key. A linear scan over views into the
// text: the lookups are few and the lines some dozens. A map of strings
// cost more than the code under test, and its tree's branches gave the
// fuzzer new "coverage" for merely reordering lines.
class FirstValues {
 public:
  explicit FirstValues(std::string_view text) : lines_(key_value_views(text)) {}
  std::optional<std::string_view> find(std::string_view key) const {
    for (const auto& [k, v] : lines_)
      if (k == key) return v;
    return std::nullopt;
  }

 private:
  std::vector<std::pair<std::string_view, std::string_view>> lines_;
};

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
