#include "common/sandbox.h"

#include <seccomp.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace kbgp {

namespace {
struct ContextDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
}  // namespace

bool install_seccomp(std::span<const SyscallRule> allowed, std::string* error) {
  std::unique_ptr<void, ContextDeleter> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) {
    *error = "seccomp_init failed";
    return false;
  }
  if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1) != 0) {
    *error = "seccomp cannot synchronise threads";
    return false;
  }
  for (const auto& rule : allowed) {
    int nr = seccomp_syscall_resolve_name(rule.name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    int rc = rule.arg_index < 0
                 ? seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0)
                 : seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1,
                                    SCMP_CMP(static_cast<unsigned>(rule.arg_index),
                                             SCMP_CMP_MASKED_EQ, rule.mask, rule.value));
    if (rc != 0) {
      *error = std::string("seccomp rule for ") + rule.name + ": " + std::strerror(-rc);
      return false;
    }
  }
  int rc = seccomp_load(ctx.get());
  if (rc != 0) {
    *error = std::string("seccomp_load: ") + std::strerror(-rc);
    return false;
  }
  return true;
}

bool drop_worker_privileges(std::string* error) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    *error = std::string("no_new_privs: ") + std::strerror(errno);
    return false;
  }
  std::unique_ptr<_cap_struct, int (*)(void*)> caps(cap_init(), cap_free);
  if (!caps || cap_set_proc(caps.get()) != 0) {
    *error = std::string("dropping capabilities: ") + std::strerror(errno);
    return false;
  }
  // Ambient and bounding sets: nothing to inherit across any exec.
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
  return true;
}

}  // namespace kbgp
