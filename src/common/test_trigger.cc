#include "common/test_trigger.h"

#ifdef KBGP_TEST_TRIGGERS

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace kbgp::test_trigger {

namespace {

shm::WorkerKind armed_kind = shm::WorkerKind::Listener;

void on_sigusr2(int) {
  forbidden_syscall(armed_kind);
  static const char kSurvived[] = "test trigger: the forbidden system call was not stopped\n";
  ssize_t ignored = ::write(2, kSurvived, sizeof kSurvived - 1);
  (void)ignored;
}

}  // namespace

void arm(shm::WorkerKind kind) {
  armed_kind = kind;
  struct sigaction sa {};
  sa.sa_handler = on_sigusr2;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGUSR2, &sa, nullptr);
}

void forbidden_syscall(shm::WorkerKind kind) {
  // Raw system calls: only the call itself, nothing a library might add.
  if (kind == shm::WorkerKind::Uplink) {
    static const char kPath[] = "/nonexistent/kbgp-test-trigger";
    char* const argv[] = {const_cast<char*>(kPath), nullptr};
    char* const envp[] = {nullptr};
    ::syscall(SYS_execve, kPath, argv, envp);
  } else {
    long fd = ::syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    if (fd >= 0) ::close(static_cast<int>(fd));
  }
}

}  // namespace kbgp::test_trigger

#endif  // KBGP_TEST_TRIGGERS
