#include "supervisor/env_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "common/fd.h"

namespace kbgp {

namespace {

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && blank(s[b])) ++b;
  while (e > b && blank(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool valid_key(const std::string& key) {
  if (key.empty() || (key[0] >= '0' && key[0] <= '9')) return false;
  for (char c : key)
    if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
      return false;
  return true;
}

// The value after '=' (already trimmed); nullopt with `reason` set when it
// is refused.
std::optional<std::string> parse_value(const std::string& raw, std::string* reason) {
  std::string out;
  if (!raw.empty() && (raw[0] == '\'' || raw[0] == '"')) {
    const char quote = raw[0];
    size_t i = 1;
    for (; i < raw.size() && raw[i] != quote; ++i) {
      if (quote == '"' && raw[i] == '\\' && i + 1 < raw.size() &&
          std::strchr("\"\\`$", raw[i + 1])) {
        out += raw[++i];
      } else {
        out += raw[i];
      }
    }
    if (i >= raw.size()) {
      *reason = std::string("unterminated ") + (quote == '"' ? "double" : "single") +
                " quote (a value spanning lines is not supported)";
      return std::nullopt;
    }
    if (i + 1 != raw.size()) {
      *reason = "text after the closing quote";
      return std::nullopt;
    }
    return out;
  }
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out += raw[i];
    } else if (i + 1 < raw.size()) {
      out += raw[++i];
    } else {
      *reason = "trailing backslash (continuation lines are not supported)";
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace

EnvFile parse_env_text(const std::string& text) {
  EnvFile file;
  // One error per bad line, but not thousands of log lines for a wrong file.
  constexpr size_t kMaxListed = 20;
  size_t unlisted = 0;
  auto bad = [&](size_t line, const std::string& key, const std::string& reason) {
    if (file.errors.size() < kMaxListed) file.errors.push_back({line, key, reason});
    else ++unlisted;
  };
  if (text.size() > kMaxEnvFileBytes) {
    file.errors.push_back({0, "", "larger than " + std::to_string(kMaxEnvFileBytes) + " bytes"});
    return file;
  }
  size_t number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++number;
    if (line.find('\0') != std::string::npos) {
      bad(number, "", "NUL byte");
      continue;
    }
    std::string content = trim(line);
    if (content.empty() || content[0] == '#' || content[0] == ';') continue;
    size_t eq = content.find('=');
    if (eq == std::string::npos) {
      bad(number, "", "not KEY=VALUE (no '=')");
      continue;
    }
    std::string key = trim(content.substr(0, eq));
    if (!valid_key(key)) {
      // The "key" may be a mistyped value: not echoed.
      bad(number, "", "not a variable name before '=' (letters, digits, _)");
      continue;
    }
    std::string reason;
    auto value = parse_value(trim(content.substr(eq + 1)), &reason);
    if (!value) {
      bad(number, key, reason);
      continue;
    }
    file.values[key] = *value;
  }
  if (unlisted)
    file.errors.push_back({0, "", "and " + std::to_string(unlisted) + " more bad lines"});
  if (!file.errors.empty()) file.values.clear();
  return file;
}

EnvFile read_env_file(const std::string& path) {
  EnvFile file;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT) {
      file.missing = true;
      return file;
    }
    file.errors.push_back({0, "", std::string("cannot open: ") + std::strerror(errno)});
    return file;
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    file.errors.push_back({0, "", "not a regular file"});
    return file;
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      file.errors.push_back({0, "", std::string("cannot read: ") + std::strerror(errno)});
      return file;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxEnvFileBytes) break;  // parse_env_text refuses it
  }
  return parse_env_text(text);
}

std::string describe(const EnvFileError& error) {
  std::string where = error.line ? "line " + std::to_string(error.line) : "file";
  if (!error.key.empty()) where += " (" + error.key + ")";
  return where + ": " + error.reason;
}

}  // namespace kbgp
