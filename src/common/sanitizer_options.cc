// Default run-time options of AddressSanitizer and UndefinedBehaviorSanitizer
// for every program of a `./configure --enable-sanitizers` build (empty
// otherwise). The runtime calls these before main(); ASAN_OPTIONS and
// UBSAN_OPTIONS in the environment override them option by option.
// configure links them in with -u (they sit in libkbgpcommon.a, which
// nothing else would pull them from).
//
// Sandboxed workers get more on top through their environment
// (sandboxed_sanitizer_environment(), passed on by the supervisor): no leak
// check and no symbolizer, which their seccomp tables would refuse. Why:
// docs/security.md, "Sanitizer builds".
#include "common/sanitizer_options.h"

#include <cstdlib>

#include "config.h"

namespace kbgp {

std::vector<std::string> sandboxed_sanitizer_environment() {
  std::vector<std::string> env;
#ifdef KBGP_SANITIZERS
  const std::pair<const char*, const char*> extra[] = {
      {"ASAN_OPTIONS", "detect_leaks=0:symbolize=0"}, {"UBSAN_OPTIONS", "symbolize=0"}};
  for (const auto& [name, options] : extra) {
    const char* own = std::getenv(name);
    env.push_back(std::string(name) + "=" + (own && *own ? std::string(own) + ":" : "") + options);
  }
#endif
  return env;
}

std::span<const SyscallRule> sanitizer_runtime_rules() {
#ifdef KBGP_SANITIZERS
  static const SyscallRule kRules[] = {
      {"pipe2",
       "sanitizer builds only: UBSan's vptr check probes memory by writing it into a pipe "
       "(IsAccessibleMemoryRange) on every miss of its type cache, in normal operation"},
      {"sigaltstack",
       "sanitizer builds only: ASan gives each thread an alternate signal stack for "
       "stack-overflow reports, and takes it away at thread exit"},
  };
  return kRules;
#else
  return {};
#endif
}

}  // namespace kbgp

#ifdef KBGP_SANITIZERS

extern "C" {

// Visible to the runtime even under -fvisibility=hidden; never instrumented,
// as the runtime is not ready when it calls them.
#define KBGP_SANITIZER_HOOK \
  __attribute__((visibility("default"), used, no_sanitize_address, no_sanitize_undefined))

// detect_leaks: LeakSanitizer at exit (the default on x86-64 Linux; said
// here so that no environment can silently drop it from the unit tests and
// kbgp-ingest). check_initialization_order, strict_init_order: static
// initializers that read another file's globals. detect_stack_use_after_return
// stays off: it doubles stack memory and time, and the e2e timeouts are
// scaled for ~3x only.
KBGP_SANITIZER_HOOK const char* __asan_default_options() {
  return "detect_leaks=1:check_initialization_order=1:strict_init_order=1";
}

// The report names file and line from the compiled-in data; the stack says
// how we got there.
KBGP_SANITIZER_HOOK const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1";
}

}  // extern "C"

#endif  // KBGP_SANITIZERS
