// Sanitizer builds (`./configure --enable-sanitizers`, KBGP_SANITIZERS):
// the run-time options a sandboxed worker gets. The defaults of every
// program are in sanitizer_options.cc.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/sandbox.h"

namespace kbgp {

// "ASAN_OPTIONS=<ours>:detect_leaks=0:symbolize=0" and the same for
// UBSAN_OPTIONS (symbolize=0), built from this process's environment; later
// options win. A seccomp-confined worker cannot run LeakSanitizer (it stops
// the world by ptrace from a new process) nor a symbolizer (it opens the
// binary or is exec'd); reports then name module+offset instead of
// functions. Empty in other builds.
std::vector<std::string> sandboxed_sanitizer_environment();

// Calls the sanitizer runtime makes under any worker's filter, which
// install_seccomp() adds to every table in sanitizer builds (and only
// there; empty otherwise). docs/security.md lists them under "Sanitizer
// builds"; its per-worker tables stay the production ones.
std::span<const SyscallRule> sanitizer_runtime_rules();

}  // namespace kbgp
