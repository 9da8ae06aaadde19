#include "common/sandbox.h"

#include <seccomp.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/ipc.h"
#include "common/sanitizer_options.h"

namespace kbgp {

namespace {
struct ContextDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

// si_code of a seccomp trap (SYS_SECCOMP in the kernel's siginfo.h, which
// glibc's headers do not define).
constexpr int kSysSeccomp = 1;

// The SIGSYS handler: only raw system calls, no allocation, no locks.
void on_forbidden_call(int, siginfo_t* info, void*) {
  if (info->si_code == kSysSeccomp) {
    ipc::SyscallViolation msg{};
    msg.header.type = static_cast<uint16_t>(ipc::MsgType::SyscallViolation);
    msg.header.version = ipc::kProtocolVersion;
    msg.header.length = sizeof msg;
    msg.syscall = info->si_syscall;
    msg.arch = info->si_arch;
    // Best effort and never blocking: the death below is what matters. Only
    // to the channel: fd 3 could be something else by now (a device socket).
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(ipc::kChannelFd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
        type == SOCK_SEQPACKET)
      ::send(ipc::kChannelFd, &msg, sizeof msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  // SA_RESETHAND made SIGSYS's action the default again, and SIGSYS is
  // blocked while this handler runs. Touching SIGSYS's action is outside
  // every filter, so this call traps once more; the kernel forces that
  // blocked SIGSYS through with its default action: the process dies of
  // SIGSYS right here, whatever state the code that trapped left behind.
  ::syscall(SYS_rt_sigaction, SIGSYS, nullptr, nullptr, sizeof(uint64_t));
  // Only without a filter (it failed to load and we are on the way out).
  std::_Exit(128 + SIGSYS);
}
}  // namespace

bool install_seccomp(std::span<const SyscallRule> allowed, std::string* error) {
  std::unique_ptr<void, ContextDeleter> ctx(seccomp_init(SCMP_ACT_TRAP));
  if (!ctx) {
    *error = "seccomp_init failed";
    return false;
  }
  if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1) != 0) {
    *error = "seccomp cannot synchronise threads";
    return false;
  }
  // A call under a foreign ABI has no reporter worth trusting: kill at once.
  if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0) {
    *error = "seccomp cannot kill on a foreign architecture";
    return false;
  }
  const int rt_sigaction = seccomp_syscall_resolve_name("rt_sigaction");
  auto add = [&](const SyscallRule& rule, uint32_t action, int nr, unsigned count,
                 scmp_arg_cmp cmp) {
    int rc = count ? seccomp_rule_add(ctx.get(), action, nr, 1, cmp)
                   : seccomp_rule_add(ctx.get(), action, nr, 0);
    if (rc != 0) *error = std::string("seccomp rule for ") + rule.name + ": " + std::strerror(-rc);
    return rc == 0;
  };
  for (const auto& rule : allowed) {
    int nr = seccomp_syscall_resolve_name(rule.name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (nr == rt_sigaction) {
      // Every signal but SIGSYS, each by its exact 64-bit value, so that
      // high bits the kernel ignores (it takes an int) cannot smuggle SIGSYS
      // past the comparison.
      if (rule.arg_index >= 0 || rule.refuse_errno) {
        *error = "rt_sigaction rows take no condition: install_seccomp confines them itself";
        return false;
      }
      for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGSYS &&
            !add(rule, SCMP_ACT_ALLOW, nr, 1,
                 SCMP_A0_64(SCMP_CMP_EQ, static_cast<scmp_datum_t>(sig))))
          return false;
      continue;
    }
    uint32_t action = rule.refuse_errno ? SCMP_ACT_ERRNO(static_cast<uint16_t>(rule.refuse_errno))
                                        : SCMP_ACT_ALLOW;
    scmp_arg_cmp cmp = SCMP_CMP64(static_cast<unsigned>(rule.arg_index < 0 ? 0 : rule.arg_index),
                                  SCMP_CMP_MASKED_EQ, rule.mask, rule.value);
    if (!add(rule, action, nr, rule.arg_index < 0 ? 0 : 1, cmp)) return false;
  }
  // Sanitizer builds only (empty otherwise): what the ASan/UBSan runtime
  // itself calls, unless the table allows it already.
  for (const auto& rule : sanitizer_runtime_rules()) {
    bool present = false;
    for (const auto& own : allowed)
      present = present || (std::strcmp(own.name, rule.name) == 0 && own.arg_index < 0 &&
                            own.refuse_errno == 0);
    int nr = seccomp_syscall_resolve_name(rule.name);
    if (present || nr == __NR_SCMP_ERROR) continue;
    if (!add(rule, SCMP_ACT_ALLOW, nr, 0, scmp_arg_cmp{})) return false;
  }

  struct sigaction reporter {};
  reporter.sa_sigaction = on_forbidden_call;
  reporter.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&reporter.sa_mask);
  struct sigaction previous {};
  if (::sigaction(SIGSYS, &reporter, &previous) != 0) {
    *error = std::string("SIGSYS handler: ") + std::strerror(errno);
    return false;
  }
  prepare_sanitizers_for_seccomp();  // sanitizer builds only
  int rc = seccomp_load(ctx.get());
  if (rc != 0) {
    ::sigaction(SIGSYS, &previous, nullptr);
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

std::string syscall_name(int number, uint32_t arch) {
  std::string text = "syscall " + std::to_string(number);
  if (arch != seccomp_arch_native()) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%#x", arch);
    return text + " of arch " + hex;
  }
  std::unique_ptr<char, decltype(&std::free)> name(seccomp_syscall_resolve_num_arch(arch, number),
                                                   &std::free);
  return name ? std::string(name.get()) : text;
}

}  // namespace kbgp
