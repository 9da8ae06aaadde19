// The environment file (--env-file, $KBGP_ENV_FILE): the file systemd's
// EnvironmentFile= loads at start, which kbgp reads itself at start and
// again on SIGHUP (a process cannot re-read its environment).
//
// Format, a strict subset of systemd.exec(5) EnvironmentFile=, one
// assignment per line:
//   - empty lines and lines whose first non-blank character is '#' or ';'
//     are comments;
//   - KEY=VALUE: KEY is [A-Za-z_][A-Za-z0-9_]* (blanks around it are
//     dropped), blanks (space, tab, CR) around VALUE are dropped;
//   - VALUE in single quotes is taken verbatim; in double quotes, \" \\ \`
//     and \$ stand for the character, any other backslash is kept; unquoted,
//     a backslash keeps the next character (\\ is one backslash) and quotes
//     after the first character are kept as they are;
//   - a later assignment of a KEY replaces an earlier one.
// Refused, where systemd would guess or silently skip: a line without '='
// (e.g. "export KEY=VALUE"), a bad KEY, an unterminated or unbalanced
// quote, text after a closing quote, a value continued on the next line
// (trailing backslash or a quote spanning lines), a NUL byte, a file over
// 64 KiB. Errors name the line and the key, never the value (it may be the
// API token); the first 20 are listed, then how many more there are.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kbgp {

using EnvValues = std::map<std::string, std::string>;

struct EnvFileError {
  size_t line = 0;  // 1-based; 0 for the file as a whole
  std::string key;  // when known
  std::string reason;
};

struct EnvFile {
  EnvValues values;
  std::vector<EnvFileError> errors;  // empty: values are the whole file
  bool missing = false;              // the file does not exist (ENOENT)
};

constexpr size_t kMaxEnvFileBytes = 64 * 1024;

// Parses the text of an environment file.
EnvFile parse_env_text(const std::string& text);
// Reads and parses the file at `path`; missing file: `missing` set, no error.
EnvFile read_env_file(const std::string& path);
// "line 3 (KEY): reason" -- for log lines and start-up errors.
std::string describe(const EnvFileError& error);

}  // namespace kbgp
