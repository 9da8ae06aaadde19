// Structured logging: one JSON object per line by default (time, level,
// message, service, component, then context fields), or the human form of
// the vendor's sample with --human-logs:
//   2023-07-25 17:01:49.87 INF Deny-listed an INVALID / UNKNOWN device component=... key=value
// Backed by spdlog (stderr, which systemd sends to the journal). Heavy headers
// stay in log.cc.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace kbgp::log {

enum class Level : uint8_t { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Critical = 5, Off = 6 };
enum class Format : uint8_t { Json = 0, Human = 1 };

struct Field {
  std::string_view key;
  std::string value;
  Field(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  template <typename N, typename = std::enable_if_t<std::is_arithmetic_v<N>>>
  Field(std::string_view k, N n) : key(k), value(std::to_string(n)) {}
};

// Sets the process-wide component name (e.g. "supervisor") and output form.
void init(std::string_view component, Level level, Format format);
void set_level(Level level);
Level level();
Format format();

std::optional<Level> parse_level(std::string_view text);
const char* level_name(Level level);

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});
inline void trace(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Trace, m, f); }
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Debug, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Info, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Warn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Error, m, f); }

// Formats one line without writing it (used by tests).
std::string format_line(Level level, std::string_view message,
                        std::initializer_list<Field> fields, int64_t realtime_ns);

}  // namespace kbgp::log
