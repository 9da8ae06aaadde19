// libFuzzer target: the environment file (--env-file; supervisor/env_file.h),
// read at start and on SIGHUP. Checks: every key is a valid name; a value
// holds no NUL or line break; an accepted file written back (values in
// double quotes, escaped) reads back to the same values; a refused line
// is named by its number, within the file.
//
// Input: the file's text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "supervisor/env_file.h"

using namespace kbgp;

namespace {

bool valid_key(const std::string& key) {
  if (key.empty()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string write_back(const EnvValues& values) {
  std::string out;
  for (const auto& [key, value] : values) {
    out += key + "=\"";
    for (char c : value) {
      if (c == '"' || c == '\\' || c == '`' || c == '$') out += '\\';
      out += c;
    }
    out += "\"\n";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  EnvFile file = parse_env_text(text);
  size_t lines = 1;
  for (char c : text) lines += c == '\n';
  for (const auto& error : file.errors) {
    FUZZ_CHECK(!error.reason.empty());
    FUZZ_CHECK(error.line <= lines);
    FUZZ_CHECK(!describe(error).empty());
  }
  for (const auto& [key, value] : file.values) {
    FUZZ_CHECK(valid_key(key));
    FUZZ_CHECK(value.find('\0') == std::string::npos && value.find('\n') == std::string::npos);
  }
  if (!file.errors.empty()) return 0;
  EnvFile again = parse_env_text(write_back(file.values));
  FUZZ_CHECK(again.errors.empty());
  FUZZ_CHECK(again.values == file.values);
  return 0;
}
