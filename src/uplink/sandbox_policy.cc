// What the uplink may ask of the kernel. It is the one worker that talks to
// the outside world, so it keeps what gRPC, TLS, DNS (c-ares) and HTTP
// CONNECT proxies need (measured: ../shared/reference/grpc-cpp-facts.md):
// sockets and connect, reading a few configuration files, threads. It may
// not exec, fork (clone only makes threads), ptrace, mount, change
// credentials, write or create files.
#include "uplink/sandbox_policy.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <cerrno>

namespace kbgp::uplink {

namespace {
const SyscallRule kPolicy[] = {
    // Network: gRPC connections, DNS, address sorting probes.
    {"socket", "IPv4 TCP to the backend, UDP for DNS and address sorting", 0, ~0ULL, AF_INET},
    {"socket", "the same over IPv6", 0, ~0ULL, AF_INET6},
    {"connect", "the backend, a proxy, DNS servers"},
    {"bind", "c-ares and address-sorting UDP sockets"},
    {"getsockname", "address sorting"},
    {"getpeername", "peer address of a connection"},
    {"getsockopt", "SO_ERROR after connect"},
    {"setsockopt", "TCP_NODELAY, keepalive, buffer sizes"},
    {"shutdown", "closing connections"},
    {"sendmsg", "gRPC writes; supervisor channel"},
    {"recvmsg", "gRPC reads; supervisor channel"},
    {"sendto", "DNS"},
    {"recvfrom", "DNS"},
    {"sendmmsg", "glibc resolver"},
    // The web proxy relay (proxy_relay.h): gRPC connects to it on 127.0.0.1.
    {"listen", "the web proxy relay's socket on 127.0.0.1 (only with a proxy configured)"},
    {"accept4", "gRPC's connections to the web proxy relay"},
    // glibc's resolver (proxy host names, export URLs) first asks nscd over
    // a Unix socket; refusing it makes glibc resolve by itself.
    {"socket", "refused for AF_UNIX: glibc's probe for nscd, which then resolves by itself", 0,
     ~0ULL, AF_UNIX, EACCES},
    // Event loops and wake-ups.
    {"epoll_create1", "gRPC's pollers"},
    {"epoll_ctl", "gRPC's pollers"},
    {"epoll_wait", "gRPC's pollers"},
    {"epoll_pwait", "gRPC's pollers (glibc)"},
    {"poll", "the event thread, c-ares"},
    {"ppoll", "poll (glibc)"},
    {"eventfd2", "gRPC wake-ups, our job queue"},
    {"pipe2", "gRPC wake-up fallback"},
    {"read", "sockets, eventfds, config files"},
    {"readv", "sockets"},
    {"write", "eventfds, log lines"},
    {"writev", "sockets, log lines"},
    {"pread64", "the CA bundle descriptor"},
    {"close", "descriptors"},
    {"fcntl", "non-blocking sockets"},
    {"ioctl", "FIONREAD / FIONBIO on sockets"},
    // Files gRPC reads at run time (hosts, resolv.conf, CPU count, TLS roots).
    {"openat", "configuration files, read-only: no write, create or truncate", 2,
     O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0},
    {"newfstatat", "stat of configuration files"},
    {"fstat", "stat of configuration files"},
    {"statx", "stat (newer glibc)"},
    {"lseek", "file reads"},
    {"access", "file presence checks"},
    {"faccessat", "file presence checks"},
    {"faccessat2", "file presence checks"},
    {"readlink", "OpenSSL configuration lookup"},
    {"uname", "OpenSSL and gRPC platform checks"},
    {"sysinfo", "gRPC resource quota"},
    {"sched_getaffinity", "gRPC counts CPUs"},
    // Memory.
    {"mmap", "allocator, session regions"},
    {"munmap", "allocator, session regions"},
    {"mprotect", "thread stacks' guard pages"},
    {"mremap", "allocator"},
    {"madvise", "allocator"},
    {"brk", "allocator"},
    // Threads.
    {"clone", "gRPC threads: only with CLONE_THREAD, so never a new process", 0, CLONE_THREAD,
     CLONE_THREAD},
    {"clone3", "refused with ENOSYS: glibc then falls back to clone, whose flags a filter can "
               "check (clone3 passes them behind a pointer)",
     -1, 0, 0, ENOSYS},
    {"set_robust_list", "new threads"},
    {"rseq", "new threads"},
    {"futex", "locks and condition variables"},
    {"sched_yield", "spin locks"},
    {"sched_getparam", "thread priorities (glibc)"},
    {"sched_getscheduler", "thread priorities (glibc)"},
    {"prctl", "thread names (PR_SET_NAME) only: no dumpable, no ptracer", 0, ~0ULL, PR_SET_NAME},
    {"prctl", "thread names (PR_GET_NAME)", 0, ~0ULL, PR_GET_NAME},
    {"set_tid_address", "thread start"},
    {"gettid", "thread ids"},
    {"getpid", "logging"},
    {"tgkill", "thread signals"},
    {"getrandom", "TLS, UUIDs"},
    {"getuid", "glibc"},
    {"geteuid", "glibc"},
    {"getgid", "glibc"},
    {"getegid", "glibc"},
    {"prlimit64", "resource limits query"},
    {"clock_gettime", "timestamps without the vDSO"},
    {"gettimeofday", "timestamps"},
    {"clock_nanosleep", "backoff sleeps"},
    {"nanosleep", "backoff sleeps"},
    {"rt_sigaction", "signal set-up"},
    {"rt_sigprocmask", "signal masking"},
    {"rt_sigreturn", "return from a signal"},
    {"restart_syscall", "restart after a signal"},
    {"exit", "thread exit"},
    {"exit_group", "process exit"},
};
}  // namespace

std::span<const SyscallRule> sandbox_policy() { return kPolicy; }

}  // namespace kbgp::uplink
