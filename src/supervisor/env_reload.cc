#include "supervisor/env_reload.h"

#include <algorithm>
#include <optional>

#include "supervisor/options.h"

namespace kbgp {

namespace {

// Read at start by kbgp or its workers, though no flag's: the web proxy
// settings and what the workers' environment carries (supervisor.cc
// worker_environment), and KBGP_OPTS, which systemd puts on the command line.
const char* const kReadAtStart[] = {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
                                    "no_proxy",    "NO_PROXY",    "grpc_proxy", "GRPC_VERBOSITY",
                                    "TZ",          "KBGP_OPTS"};

std::optional<std::string> value_of(const EnvValues& values, const std::string& key) {
  auto it = values.find(key);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

}  // namespace

bool changes_at_run_time(const std::string& variable) { return variable == "KENTIK_LOG_LEVEL"; }

std::vector<EnvChange> env_changes(const EnvValues& at_start, const EnvValues& applied,
                                   const EnvValues& now, const std::vector<std::string>& flags_given) {
  std::set<std::string> keys;
  for (const auto* values : {&at_start, &applied, &now})
    for (const auto& [key, value] : *values) keys.insert(key);
  std::vector<EnvChange> out;
  for (const auto& key : keys) {
    auto flag = flag_of_variable(key);
    EnvChange change{key, EnvChange::Kind::Unused, flag.value_or("")};
    // A flag on the command line wins over the file, now as at start.
    bool flag_given = flag && std::find(flags_given.begin(), flags_given.end(), *flag) !=
                                  flags_given.end();
    if (changes_at_run_time(key)) {
      if (value_of(applied, key) == value_of(now, key)) continue;
      change.kind = flag_given ? EnvChange::Kind::OverriddenByFlag : EnvChange::Kind::Applied;
    } else if (flag || std::find(std::begin(kReadAtStart), std::end(kReadAtStart), key) !=
                           std::end(kReadAtStart)) {
      // Against the start: the change waits for a restart, and each SIGHUP
      // says so again until then.
      if (value_of(at_start, key) == value_of(now, key)) continue;
      change.kind = flag_given ? EnvChange::Kind::OverriddenByFlag : EnvChange::Kind::NeedsRestart;
    } else {
      if (value_of(applied, key) == value_of(now, key)) continue;
    }
    out.push_back(std::move(change));
  }
  return out;
}

}  // namespace kbgp
