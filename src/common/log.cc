#include "common/log.h"

#include <jansson.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "common/log_ring.h"
#include "common/timeutil.h"

namespace kbgp::log {

namespace {
std::string g_component = "kbgp";
Level g_level = Level::Info;
Format g_format = Format::Json;
std::shared_ptr<spdlog::logger> g_logger;

spdlog::logger& logger() {
  if (!g_logger) {
    // stderr_sink_mt writes each formatted line with one fwrite+fflush, so
    // lines from several threads never interleave.
    g_logger = std::make_shared<spdlog::logger>(
        "kbgp", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    g_logger->set_pattern("%v");
    g_logger->set_level(spdlog::level::trace);
    g_logger->flush_on(spdlog::level::trace);
  }
  return *g_logger;
}

const char* short_name(Level level) {
  switch (level) {
    case Level::Trace: return "TRC";
    case Level::Debug: return "DBG";
    case Level::Info: return "INF";
    case Level::Warn: return "WRN";
    case Level::Error: return "ERR";
    case Level::Critical: return "CRT";
    case Level::Off: return "OFF";
  }
  return "???";
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  return false;
}
}  // namespace

void init(std::string_view component, Level level, Format format) {
  // jansson seeds its hash function from /dev/urandom on the first object;
  // do it now, before a worker's seccomp policy forbids opening files.
  json_object_seed(0);
  g_component = std::string(component);
  g_level = level;
  g_format = format;
  logger();
}

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }
Format format() { return g_format; }

std::optional<Level> parse_level(std::string_view text) {
  if (text == "trace") return Level::Trace;
  if (text == "debug") return Level::Debug;
  if (text == "info") return Level::Info;
  if (text == "warn" || text == "warning") return Level::Warn;
  if (text == "error") return Level::Error;
  if (text == "critical" || text == "fatal") return Level::Critical;
  if (text == "off" || text == "disabled") return Level::Off;
  return std::nullopt;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::Trace: return "trace";
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
    case Level::Critical: return "critical";
    case Level::Off: return "off";
  }
  return "unknown";
}

// A JSON string for any bytes. jansson refuses invalid UTF-8 (json_stringn
// returns NULL and the field would vanish from the line), and log values
// can hold bytes from outside (a device's OPEN, a backend's metadata):
// each byte of an invalid sequence is written as the text \xNN instead.
static bool valid_utf8(std::string_view v) {
  json_t* s = json_stringn(v.data(), v.size());
  json_decref(s);
  return s != nullptr;
}

static json_t* json_text(std::string_view v) {
  if (json_t* s = json_stringn(v.data(), v.size())) return s;
  std::string clean;
  clean.reserve(v.size() + 16);
  for (size_t i = 0; i < v.size();) {
    auto lead = static_cast<unsigned char>(v[i]);
    size_t n = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3
             : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (n == 1 || (n > 1 && i + n <= v.size() && [&] {
          json_t* one = json_stringn(v.data() + i, n);  // jansson's own rules
          json_decref(one);
          return one != nullptr;
        }())) {
      clean.append(v.data() + i, n);
      i += n;
      continue;
    }
    char hex[5];
    std::snprintf(hex, sizeof hex, "\\x%02X", lead);
    clean += hex;
    ++i;
  }
  return json_stringn(clean.data(), clean.size());
}

// The JSON form of a line. `cut` > 0 shortens the message and every field
// value to that many bytes (at a UTF-8 boundary) and adds "truncated".
static std::string json_line(Level level, std::string_view message, std::initializer_list<Field> fields,
                      int64_t realtime_ns, size_t cut) {
  auto shorten = [cut](std::string_view v) {
    if (cut == 0 || v.size() <= cut) return v;
    size_t n = cut;
    while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xc0) == 0x80) --n;
    return v.substr(0, n);
  };
  json_t* obj = json_object();
  json_object_set_new(obj, "time", json_string(format_time_rfc3339(realtime_ns).c_str()));
  json_object_set_new(obj, "level", json_string(level_name(level)));
  std::string_view m = shorten(message);
  json_object_set_new(obj, "message", json_text(m));
  json_object_set_new(obj, "service", json_string("kbgp"));
  json_object_set_new(obj, "component", json_string(g_component.c_str()));
  for (const auto& f : fields) {
    std::string key(f.key);
    std::string_view v = shorten(f.value);
    json_object_set_new(obj, key.c_str(), json_text(v));
  }
  if (cut) json_object_set_new(obj, "truncated", json_string("true"));
  char* text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
  std::string line = text ? text : "{}";
  free(text);
  json_decref(obj);
  return line;
}

std::string format_line(Level level, std::string_view message,
                        std::initializer_list<Field> fields, int64_t realtime_ns) {
  if (g_format == Format::Human) {
    std::string line = format_time_human(realtime_ns);
    line += ' ';
    line += short_name(level);
    line += ' ';
    line += message;
    line += " component=" + g_component;
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      if (needs_quotes(f.value) || !valid_utf8(f.value)) {
        json_t* s = json_text(f.value);
        char* quoted = s ? json_dumps(s, JSON_ENCODE_ANY) : nullptr;
        line += quoted ? quoted : "\"\"";
        free(quoted);
        json_decref(s);
      } else {
        line += f.value;
      }
    }
    return line;
  }
  return json_line(level, message, fields, realtime_ns, 0);
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (level < g_level || level == Level::Off) return;
  int64_t now = realtime_ns();
  std::string line = format_line(level, message, fields, now);
  logger().log(spdlog::level::info, "{}", line);
  // The copy for log export (common/log_ring.h): always the JSON form, cut
  // down to fit a record rather than cut off.
  if (logring::Region* ring = logring::attached()) {
    if (g_format != Format::Json) line = json_line(level, message, fields, now, 0);
    for (size_t cut : {size_t{1024}, size_t{128}, size_t{32}}) {
      if (line.size() <= logring::kTextBytes) break;
      line = json_line(level, message, fields, now, cut);
    }
    logring::append(ring, static_cast<uint8_t>(level), now, line);
  }
}

}  // namespace kbgp::log
