// What the listener may ask of the kernel once it serves. It receives device
// sockets and memfds from the supervisor, maps them, moves bytes between
// sockets and rings, and signals eventfds. It may not create sockets,
// connect, open files, exec, or trace anything.
#include "listener/sandbox_policy.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <iterator>

namespace kbgp::listener {

namespace {
const SyscallRule kPolicy[] = {
    // Event loop (libevent, epoll backend).
    {"epoll_wait", "wait for sockets, eventfds and the channel"},
    {"epoll_pwait", "glibc may use it for epoll_wait"},
    {"epoll_ctl", "watch and unwatch device sockets"},
    // Moving bytes.
    {"read", "device sockets and eventfds"},
    {"readv", "device sockets"},
    {"write", "eventfds, device sockets, log lines on stderr"},
    {"writev", "device sockets (ring spans), log lines"},
    {"recvfrom", "device sockets"},
    {"sendto", "device sockets"},
    {"recvmsg", "supervisor channel: sessions arrive with SCM_RIGHTS"},
    {"sendmsg", "supervisor channel: SessionDone"},
    // Per-session descriptors and mappings.
    {"mmap", "map session regions; allocator. Never executable: no code can be brought in",
     2, PROT_EXEC, 0},
    {"munmap", "unmap session regions; allocator"},
    {"madvise", "allocator"},
    {"mremap", "allocator"},
    {"brk", "allocator"},
    {"close", "end of a session"},
    {"fcntl", "non-blocking device sockets"},
    {"fstat", "size of a session memfd"},
    {"newfstatat", "size of a session memfd (glibc fstat)"},
    {"setsockopt", "TCP_NODELAY, SO_LINGER 0 for aborts"},
    {"getsockopt", "SO_ERROR after a failed write; TCP_INFO byte counts after a restart"},
    // After a restart: what the kernel says was read and written
    // (listener/tcp_accounting.h). Only these two requests.
    {"ioctl", "SIOCINQ: received bytes not yet read", 1, ~0ull, SIOCINQ},
    {"ioctl", "SIOCOUTQ: written bytes not yet acknowledged", 1, ~0ull, SIOCOUTQ},
    {"shutdown", "orderly close towards the device"},
    // Threads and time (no threads are created; spdlog takes a mutex).
    {"futex", "mutexes"},
    {"clock_gettime", "timestamps when the vDSO is unavailable"},
    {"gettimeofday", "libevent's clock fallback"},
    {"clock_nanosleep", "never expected; harmless"},
    {"getpid", "logging"},
    {"gettid", "logging"},
    {"rt_sigaction", "libevent restores signal handlers when its loop is freed"},
    {"rt_sigprocmask", "libevent and glibc signal masking"},
    {"rt_sigreturn", "return from SIGTERM handling"},
    {"restart_syscall", "restart after a signal"},
    {"exit", "thread exit"},
    {"exit_group", "process exit"},
};
}  // namespace

std::span<const SyscallRule> sandbox_policy() { return kPolicy; }

}  // namespace kbgp::listener
