// Sanitizer builds (`./configure --enable-sanitizers`, KBGP_SANITIZERS):
// the run-time options a sandboxed worker gets. The defaults of every
// program are in sanitizer_options.cc.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/sandbox.h"

namespace kbgp {

// "ASAN_OPTIONS=<ours>:detect_leaks=0:symbolize=0:color=never" and
// "UBSAN_OPTIONS=<ours>:symbolize=0:print_stacktrace=0:color=never", from
// this process's environment; later options win. A seccomp-confined worker
// cannot run LeakSanitizer (it stops the world by ptrace from a new
// process), a symbolizer (it opens the binary or is exec'd) or UBSan's
// stack printer (it reads /proc/self/maps), and colours cost an ioctl;
// ASan frames then read module+offset. Empty in other builds.
std::vector<std::string> sandboxed_sanitizer_environment();

// Calls the sanitizer runtime makes under any worker's filter, which
// install_seccomp() adds to every table in sanitizer builds (and only
// there; empty otherwise). docs/security.md lists them under "Sanitizer
// builds"; its per-worker tables stay the production ones.
std::span<const SyscallRule> sanitizer_runtime_rules();

// Does now, before a filter is loaded, what the runtimes would otherwise do
// lazily at their first report, with calls no worker table allows (open
// /proc/self/maps and /proc/self/cmdline, readlink /proc/self/exe): ASan's
// module list and UBSan's own initialisation. Nothing otherwise.
void prepare_sanitizers_for_seccomp();

}  // namespace kbgp
