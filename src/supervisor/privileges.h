// The supervisor's privileges: which capabilities it needs, when, and why.
//
// It starts as root (systemd: CapabilityBoundingSet= limits that to the
// start-up set below), binds its sockets and opens its files, and then, at
// the end of Supervisor::setup() and before any worker exists, drops
// everything but the run-time set for good: the bounding set is emptied (so
// nothing it or a worker execs can regain a capability), the securebits are
// locked (no capabilities from being root, none kept across a uid change),
// no new privileges, not dumpable, no core file. docs/security.md shows the
// same tables; a unit test keeps the two in sync.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace kbgp {

struct CapabilityNeed {
  int cap;           // CAP_* value
  const char* name;  // "CAP_SETUID"
  const char* why;
};

// Held from exec until drop_supervisor_privileges(); the systemd unit's
// CapabilityBoundingSet= is this set plus the run-time one.
std::span<const CapabilityNeed> startup_capabilities();
// Kept while the supervisor runs as root and starts workers as --user.
// CAP_NET_RAW only with --enable-md5-support.
std::vector<CapabilityNeed> runtime_capabilities(bool md5);
// Considered and not needed, with the reason (for docs/security.md).
std::span<const CapabilityNeed> capabilities_not_needed();

struct PrivilegePlan {
  bool switch_user = false;  // running as root: workers start as another uid
  bool md5 = false;          // --enable-md5-support
};

// Drops every capability outside runtime_capabilities(plan.md5) (none at
// all when !switch_user), empties the bounding and ambient sets, locks the
// securebits, sets no_new_privs, dumpable 0 and RLIMIT_CORE 0, then checks
// the result. False with `error` set when a needed capability is missing
// or the drop did not hold. `notes` gets what could not be tightened (no
// CAP_SETPCAP to empty the bounding set), for the log.
bool drop_supervisor_privileges(const PrivilegePlan& plan, std::string* error,
                                std::vector<std::string>* notes);

// "CAP_SETUID,CAP_SETGID" (empty string for none), for log lines.
std::string capability_list(const std::vector<CapabilityNeed>& caps);

}  // namespace kbgp
