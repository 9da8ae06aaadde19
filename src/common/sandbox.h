// Seccomp allow-lists, written as readable tables (one row per system call
// and the reason it is allowed), loaded with libseccomp. Any call not in the
// table kills the whole process (SCMP_ACT_KILL_PROCESS); the supervisor sees
// SIGSYS, logs it and restarts the worker.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace kbgp {

struct SyscallRule {
  const char* name;  // as libseccomp knows it, e.g. "recvmsg"
  const char* why;   // documentation only
  // Optional condition on one integer argument: allowed only when
  // (arg[arg_index] & mask) == value. Several rows for one call are OR-ed.
  int arg_index = -1;
  uint64_t mask = 0;
  uint64_t value = 0;
};

// Loads the filter for every thread of the process (TSYNC). Unknown names on
// this architecture are skipped (they cannot be called either). Returns false
// with error filled when the filter could not be loaded.
bool install_seccomp(std::span<const SyscallRule> allowed, std::string* error);

// Drops what is left of privilege in a worker: no new privileges, no
// capabilities in any set, no core dumps that could hold secrets.
bool drop_worker_privileges(std::string* error);

}  // namespace kbgp
