// What the admin may ask of the kernel once it serves. It accepts HTTP
// clients on the socket the supervisor bound, reads the read-only control
// region and answers. It may not create sockets, connect, open files, exec
// or map anything writable and shared.
#include "admin/sandbox_policy.h"

#include <sys/mman.h>

namespace kbgp::admin {

namespace {
const SyscallRule kPolicy[] = {
    {"epoll_wait", "event loop"},
    {"epoll_pwait", "event loop (glibc)"},
    {"epoll_ctl", "event loop"},
    {"accept", "HTTP clients"},
    {"accept4", "HTTP clients"},
    {"listen", "libevent re-arms the already bound socket"},
    {"getsockname", "libevent's listener"},
    {"getpeername", "client address for the log"},
    {"read", "HTTP requests"},
    {"readv", "HTTP requests"},
    {"recvfrom", "HTTP requests"},
    {"write", "HTTP answers, log lines"},
    {"writev", "HTTP answers, log lines"},
    {"sendto", "HTTP answers"},
    {"recvmsg", "supervisor channel"},
    {"sendmsg", "supervisor channel: heartbeats"},
    {"ioctl", "libevent's FIONREAD on HTTP sockets"},
    {"close", "HTTP clients"},
    {"shutdown", "HTTP clients"},
    {"fcntl", "non-blocking clients"},
    {"setsockopt", "client socket options"},
    {"getsockopt", "SO_ERROR"},
    {"mmap", "allocator. Never executable: no code can be brought in", 2, PROT_EXEC, 0},
    {"munmap", "allocator"},
    {"madvise", "allocator"},
    {"mremap", "allocator"},
    {"brk", "allocator"},
    {"futex", "mutexes"},
    {"clock_gettime", "timestamps when the vDSO is unavailable"},
    {"gettimeofday", "libevent's clock fallback"},
    {"getpid", "logging"},
    {"gettid", "logging"},
    {"rt_sigaction", "libevent restores signal handlers when its loop is freed"},
    {"rt_sigprocmask", "signal masking"},
    {"rt_sigreturn", "return from a signal"},
    {"restart_syscall", "restart after a signal"},
    {"exit", "thread exit"},
    {"exit_group", "process exit"},
};
}  // namespace

std::span<const SyscallRule> sandbox_policy() { return kPolicy; }

}  // namespace kbgp::admin
