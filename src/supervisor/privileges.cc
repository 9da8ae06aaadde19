#include "supervisor/privileges.h"

#include <linux/securebits.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace kbgp {

namespace {

const CapabilityNeed kStartup[] = {
    {CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE",
     "bind the device listeners (port 179) and the status API; all are bound before the drop "
     "and kept open for the agent's life, also across worker restarts"},
    {CAP_SETPCAP, "CAP_SETPCAP",
     "empty the capability bounding set and lock the securebits at the drop, so that neither "
     "the supervisor nor a worker can ever regain a capability"},
};

const CapabilityNeed kSetUid{
    CAP_SETUID, "CAP_SETUID",
    "start (and restart) each worker as --user: setresuid in the forked child before exec; "
    "signal a worker through a short-lived child that takes the worker's uid"};
const CapabilityNeed kSetGid{CAP_SETGID, "CAP_SETGID",
                             "setgroups and setresgid in the same child"};
const CapabilityNeed kNetRaw{CAP_NET_RAW, "CAP_NET_RAW",
                             "capture the SYNs of TCP-MD5 sessions on a packet socket "
                             "(supervisor/syn_capture.h)"};

const CapabilityNeed kNotNeeded[] = {
    {CAP_KILL, "CAP_KILL",
     "workers run under another uid, but the supervisor signals them through a child that "
     "takes their uid (CAP_SETUID, which it keeps anyway); a worker not yet switched is still "
     "root's and can be signalled directly"},
    {CAP_NET_ADMIN, "CAP_NET_ADMIN",
     "TCP-MD5 keys (TCP_MD5SIG) are set on sockets the supervisor owns, which needs no "
     "capability"},
    {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE",
     "the one file it opens, --tls-ca-file, is opened before the drop; under the systemd unit "
     "(no CAP_DAC_OVERRIDE) it must be root's or world-readable"},
    {CAP_SYS_CHROOT, "CAP_SYS_CHROOT",
     "no chroot: the workers are dynamically linked and exec'd by path, and once they run as "
     "--user they could not chroot themselves; seccomp keeps listener and admin from opening "
     "any file instead"},
    {CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE",
     "RLIMIT_NOFILE is raised only up to the hard limit; workers' limits are only lowered"},
};

struct CapDeleter {
  void operator()(cap_t caps) const { cap_free(caps); }
};
using CapPtr = std::unique_ptr<_cap_struct, CapDeleter>;

bool has(cap_t caps, cap_value_t cap, cap_flag_t set) {
  cap_flag_value_t value = CAP_CLEAR;
  return cap_get_flag(caps, cap, set, &value) == 0 && value == CAP_SET;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

std::span<const CapabilityNeed> startup_capabilities() { return kStartup; }

std::vector<CapabilityNeed> runtime_capabilities(bool md5) {
  std::vector<CapabilityNeed> caps{kSetUid, kSetGid};
  if (md5) caps.push_back(kNetRaw);
  return caps;
}

std::span<const CapabilityNeed> capabilities_not_needed() { return kNotNeeded; }

std::string capability_list(const std::vector<CapabilityNeed>& caps) {
  std::string out;
  for (const auto& c : caps) out += (out.empty() ? "" : ",") + std::string(c.name);
  return out;
}

bool drop_supervisor_privileges(const PrivilegePlan& plan, std::string* error,
                                std::vector<std::string>* notes) {
  std::vector<CapabilityNeed> keep;
  if (plan.switch_user) keep = runtime_capabilities(plan.md5);

  CapPtr now(cap_get_proc());
  if (!now) {
    *error = errno_text("reading our capabilities");
    return false;
  }
  for (const auto& need : keep) {
    if (!has(now.get(), need.cap, CAP_PERMITTED)) {
      *error = std::string("the supervisor needs ") + need.name + " to " + need.why +
               "; it is not in its permitted set (systemd: add it to CapabilityBoundingSet=)";
      return false;
    }
  }

  if (has(now.get(), CAP_SETPCAP, CAP_EFFECTIVE)) {
    // Keep-caps and no-setuid-fixup stay off and locked: a worker's change
    // of uid must clear every capability it inherited. Noroot: being root
    // never grants capabilities again (not at exec either).
    unsigned bits = cap_get_secbits();
    if (bits & (SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP)) {
      *error = "securebits keep-caps or no-setuid-fixup are set: workers would keep "
               "capabilities across their change of uid";
      return false;
    }
    bits |= SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NOROOT |
            SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
            SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (cap_set_secbits(bits) != 0) {
      *error = errno_text("locking the securebits");
      return false;
    }
    for (cap_value_t cap = 0; cap < cap_max_bits(); ++cap) {
      if (CAP_IS_SUPPORTED(cap) && cap_drop_bound(cap) != 0) {
        *error = errno_text("emptying the capability bounding set");
        return false;
      }
    }
  } else if (plan.switch_user) {
    notes->push_back("CAP_SETPCAP is missing: the capability bounding set and the securebits "
                     "stay as inherited (workers still get no capabilities: they change uid "
                     "and set no_new_privs)");
  }
  if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() != 0) {
    *error = errno_text("clearing the ambient capabilities");
    return false;
  }

  CapPtr want(cap_init());
  if (!want) {
    *error = errno_text("cap_init");
    return false;
  }
  for (const auto& need : keep) {
    cap_value_t cap = need.cap;
    if (cap_set_flag(want.get(), CAP_PERMITTED, 1, &cap, CAP_SET) != 0 ||
        cap_set_flag(want.get(), CAP_EFFECTIVE, 1, &cap, CAP_SET) != 0) {
      *error = errno_text("cap_set_flag");
      return false;
    }
  }
  if (cap_set_proc(want.get()) != 0) {
    *error = errno_text("dropping capabilities");
    return false;
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    *error = errno_text("no_new_privs");
    return false;
  }
  // It holds the API token (and later MD5 keys): no core file, no ptrace
  // by processes of the same uid, /proc/<pid>/mem and environ root's only.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    *error = errno_text("dumpable");
    return false;
  }
  rlimit no_core{0, 0};
  if (::setrlimit(RLIMIT_CORE, &no_core) != 0) {
    *error = errno_text("RLIMIT_CORE");
    return false;
  }

  // Trust, but check: exactly `keep`, in every set that matters.
  CapPtr after(cap_get_proc());
  if (!after || cap_compare(after.get(), want.get()) != 0) {
    *error = "the capability drop did not hold";
    return false;
  }
  return true;
}

}  // namespace kbgp
