// Test-only fault trigger: compiled in only with
// `./configure --enable-test-triggers` (KBGP_TEST_TRIGGERS in config.h).
// Production builds contain none of it: no handler, no path, no symbol.
//
// It makes a worker perform a system call its seccomp filter forbids, so
// that tests/e2e/test_privileges.py can watch the worker die of SIGSYS, the
// supervisor name the call and restart it, and the agent keep working.
#pragma once

#include "config.h"

#ifdef KBGP_TEST_TRIGGERS

#include "common/layout.h"

namespace kbgp::test_trigger {

// On SIGUSR2 the worker performs forbidden_syscall(kind). Called before the
// filter is loaded.
void arm(shm::WorkerKind kind);
// socket() for listener and admin (they may create no socket), execve() of a
// path that does not exist for the uplink (it may create sockets, never
// exec). Returns only if the filter let the call through.
void forbidden_syscall(shm::WorkerKind kind);

}  // namespace kbgp::test_trigger

#endif  // KBGP_TEST_TRIGGERS
