// SIGHUP: what a re-read environment file changes (supervisor/env_file.h).
// Pure: compares the file as it was at start, as last applied and as it is
// now; the supervisor applies and logs the result.
//
// Run-time variables (the log level) take effect at once, unless their flag
// was given on the command line (flags win over the file, as at start).
// Every other variable kbgp reads is fixed at start: a change is reported
// as needing a restart, on every SIGHUP until then. Variables kbgp does not
// read are reported as unused.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "supervisor/env_file.h"

namespace kbgp {

struct EnvChange {
  enum class Kind {
    Applied,           // run-time variable, takes effect now
    OverriddenByFlag,  // run-time variable, but its flag is on the command line
    NeedsRestart,      // read only at start
    Unused,            // kbgp does not read it
  };
  std::string key;
  Kind kind;
  std::string flag;  // the variable's flag, when it has one
};

// True for the variables a SIGHUP applies without a restart.
bool changes_at_run_time(const std::string& variable);

// `at_start`: the file when kbgp started (empty without one), `applied`:
// after the last SIGHUP that took effect, `now`: as just read.
// `flags_given`: the flag names on the command line. Sorted by key.
std::vector<EnvChange> env_changes(const EnvValues& at_start, const EnvValues& applied,
                                   const EnvValues& now, const std::vector<std::string>& flags_given);

}  // namespace kbgp
