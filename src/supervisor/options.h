// Command line and environment of the agent, as the vendor documents them:
// `-flag` or `--flag`, `=` or a space before the value (bools take only
// `=`), flags override environment variables. Every bad value is refused
// with one line naming the flag and what it accepts.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/endpoint.h"
#include "common/log.h"

namespace kbgp {

struct Options {
  std::vector<Endpoint> listen;          // default 0.0.0.0:179 and [::]:179
  std::string target;                    // host:port of the backend
  std::string region;                    // iad1 (default) or fra1
  bool insecure = false;
  std::string email;
  std::string token;
  uint32_t site_id = 0;
  uint32_t multi = 10;
  std::string metrics_addr = "127.0.0.1";
  uint16_t metrics_port = 20920;
  log::Level log_level = log::Level::Info;
  bool human_logs = false;
  bool disable_log_export = false;
  std::string log_export_url;
  std::string metrics_export_url;
  bool enable_md5 = false;
  std::string md5_interface = "any";
  // Beyond the vendor's flags:
  std::string user = "kbgp";             // the workers' user
  std::string tls_ca_file;               // PEM roots instead of the system store
  std::string tls_server_name;           // name to check in the backend certificate
  std::string env_file;                  // re-read on SIGHUP (supervisor/env_file.h)
};

struct ParseOutcome {
  enum class Kind { Run, Help, Version, Error } kind = Kind::Error;
  Options options;
  std::string message;  // the error line, or the help text
  std::vector<std::string> flags_given;  // names of the flags on the command line
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

ParseOutcome parse_options(const std::vector<std::string>& args, const EnvLookup& env);
std::string help_text();
// The --env-file value (or $KBGP_ENV_FILE) before the full parse: the
// file's variables are part of the environment the full parse reads.
std::optional<std::string> env_file_argument(const std::vector<std::string>& args,
                                             const EnvLookup& env);
// The flag an environment variable stands for ("log-level" for
// KENTIK_LOG_LEVEL); nullopt for a variable that is no flag's.
std::optional<std::string> flag_of_variable(const std::string& variable);
// The backend a region sends sessions to; nullopt for an unknown region.
std::optional<std::string> region_target(const std::string& region);

}  // namespace kbgp
