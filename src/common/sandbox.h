// Seccomp allow-lists, written as readable tables (one row per system call
// and the reason it is allowed), loaded with libseccomp.
//
// A call that is not in the table is never executed. It traps (SIGSYS) into
// a handler installed here, which tells the supervisor which call it was
// (ipc::SyscallViolation on the channel) and then ends the whole process by
// SIGSYS; the supervisor logs the worker, the call and restarts it. The
// handler cannot be replaced or avoided: rt_sigaction for SIGSYS is not in
// any filter (install_seccomp confines every rt_sigaction row to the other
// signals), and a blocked or ignored SIGSYS is forced to its default action,
// death, by the kernel. Calls made under another ABI (e.g. int 0x80 on
// x86-64) kill the process at once. The report itself needs getsockopt and
// sendto on fd 3 in the table; without them the process still dies of
// SIGSYS, unreported.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace kbgp {

struct SyscallRule {
  const char* name;  // as libseccomp knows it, e.g. "recvmsg"
  const char* why;   // documentation only (docs/security.md lists it)
  // Optional condition on one integer argument: the row applies only when
  // (arg[arg_index] & mask) == value. Several rows for one call are OR-ed.
  int arg_index = -1;
  uint64_t mask = 0;
  uint64_t value = 0;
  // 0: the call is allowed. Otherwise it is refused with this errno and the
  // process lives on: for calls that libraries probe and fall back from
  // (clone3 -> clone, whose flags a filter can check).
  int refuse_errno = 0;
};

// Loads the filter for every thread of the process (TSYNC), after installing
// the SIGSYS reporter. Unknown names on this architecture are skipped (they
// cannot be called either). "rt_sigaction" rows must be unconditional; they
// allow every signal but SIGSYS. Returns false with error filled when the
// filter could not be loaded.
bool install_seccomp(std::span<const SyscallRule> allowed, std::string* error);

// Drops what is left of privilege in a worker: no new privileges, no
// capabilities in any set, no core dumps that could hold secrets.
bool drop_worker_privileges(std::string* error);

// "socket", or "syscall 1234" for a number this architecture does not name
// (or "syscall 41 of arch 0x40000003" for another ABI). For log lines.
std::string syscall_name(int number, uint32_t arch);

}  // namespace kbgp
