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
#include <utility>

#include "config.h"

#ifdef KBGP_SANITIZERS
#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <typeinfo>

// The UBSan runtime's data for a vptr check: its ABI with the compiler
// (ubsan_handlers_cxx.h in the runtime's sources).
extern "C" {
struct UbsanSourceLocation {
  const char* file;
  uint32_t line;
  uint32_t column;  // ~0: this location has reported already, never again
};
struct UbsanTypeDescriptor {
  uint16_t kind;
  uint16_t info;
  char name[2];
};
struct UbsanDynamicTypeCacheMissData {
  UbsanSourceLocation location;
  const UbsanTypeDescriptor* type;
  const void* type_info;
  unsigned char type_check_kind;
};
void __ubsan_handle_dynamic_type_cache_miss(UbsanDynamicTypeCacheMissData* data, void* pointer,
                                            uintptr_t hash);
}

namespace {
// Two unrelated polymorphic types for a vptr check that fails on purpose.
struct WarmUpBase {
  virtual ~WarmUpBase() = default;
};
struct WarmUpOther {
  virtual ~WarmUpOther() = default;
};
}  // namespace
#endif

namespace kbgp {

#ifdef KBGP_SANITIZERS
// ASan reads the list of loaded modules, which frames are printed against,
// at its first report; asking for one module loads it now. libubsan (a
// runtime of its own) initialises itself at its first report too. The one
// entry that initialises it and can stay silent: a vptr check that fails
// (the runtime then consults its suppressions, which initialises it) at a
// location marked as reported already (so it prints nothing). Should a
// future runtime print it after all, the test logs show a runtime error in
// this file and the tests fail: never silent.
__attribute__((no_sanitize("undefined"), noinline)) void prepare_sanitizers_for_seccomp() {
  char module[4096];
  void* offset = nullptr;
  __sanitizer_get_module_and_offset_for_pc(reinterpret_cast<void*>(&prepare_sanitizers_for_seccomp),
                                           module, sizeof module, &offset);
  static const UbsanTypeDescriptor kType{0xffff, 0, "?"};
  static UbsanDynamicTypeCacheMissData data{
      {__FILE__, __LINE__, ~uint32_t{0}}, &kType, &typeid(WarmUpOther), 0};
  WarmUpBase object;
  // Any hash the runtime has not cached as a match (0 would be, in an empty
  // cache); a failed check is never cached.
  __ubsan_handle_dynamic_type_cache_miss(&data, &object, 0x6b6267702d73616eULL);
}
#else
void prepare_sanitizers_for_seccomp() {}
#endif

std::vector<std::string> sandboxed_sanitizer_environment() {
  std::vector<std::string> env;
#ifdef KBGP_SANITIZERS
  const std::pair<const char*, const char*> extra[] = {
      {"ASAN_OPTIONS", "detect_leaks=0:symbolize=0:color=never"},
      {"UBSAN_OPTIONS", "symbolize=0:print_stacktrace=0:color=never"}};
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
// here because the unit tests, the supervisor and kbgp-ingest rely on it).
// check_initialization_order, strict_init_order: static
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
