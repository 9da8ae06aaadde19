// Command line of kbgp-ingest. The contract is fixed (other tools start the
// backend with it):
//   kbgp-ingest --listen ADDR:PORT --tls-cert FILE --tls-key FILE
//               --credentials FILE --registry FILE [--plaintext]
//               [--log-level LEVEL] [--human-logs] [--grace-period S]
//               [--keepalive-interval S] [--control-ttl S] [--md5-push=BOOL]
//               [--export-listen ADDR:PORT --export-dir DIR] [--version] [-h]
// Flags take "--flag value" or "--flag=value", with one or two dashes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/endpoint.h"
#include "common/log.h"

namespace kbgp::ingest {

struct Options {
  Endpoint listen;
  std::string tls_cert;
  std::string tls_key;
  std::string credentials;
  std::string registry;
  bool plaintext = false;
  log::Level log_level = log::Level::Info;
  bool human_logs = false;
  uint32_t grace_period_s = 60;
  uint32_t keepalive_interval_s = 30;  // 0 = no application keepalives
  uint32_t control_ttl_s = 600;
  uint32_t control_ttl_counter = 0;  // uses of a cached accepting answer; 0 = no limit
  bool md5_push = true;  // push TCP-MD5 keys to agents unasked
  // Log and metrics export endpoint (export_server.h); both or neither.
  std::optional<Endpoint> export_listen;
  std::string export_dir;
};

// Parsing ended without options to run with: print `text` and exit with
// `code` (0: help or version on stdout; 2: usage error on stderr).
struct OptionsExit {
  int code = 0;
  std::string text;
};

// `args` excludes argv[0].
std::variant<Options, OptionsExit> parse_options(const std::vector<std::string>& args);
std::string usage_text();
std::string version_text();

}  // namespace kbgp::ingest
