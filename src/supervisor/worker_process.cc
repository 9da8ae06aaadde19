#include "supervisor/worker_process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/ipc.h"

namespace kbgp {

namespace {

struct Limit {
  int resource;  // RLIMIT_*, -1 ends the list
  rlim_t value;
};

// Resource limits per worker, set (only ever lowered) in the child after
// its change of uid. Not limited: RLIMIT_FSIZE (stderr may be a file, and
// exceeding the limit kills with SIGXFSZ; no worker can open a file for
// writing anyway), RLIMIT_AS (gRPC reserves address space; the listener maps
// every session region). Why each one: docs/security.md.
struct WorkerLimits {
  Limit items[6];
};

WorkerLimits limits_for(shm::WorkerKind kind) {
  // The count is per user, threads included, across every kbgp on the host.
  // Listener and admin never create a thread or process (seccomp forbids
  // clone): 0 makes that hold even without the filter. It is set after the
  // change of uid, where the kernel no longer checks it against the
  // processes the user already has.
  rlim_t nproc = kind == shm::WorkerKind::Uplink ? 1024 : 0;
  rlim_t nofile = kind == shm::WorkerKind::Admin ? 1024 : RLIM_INFINITY;  // infinity: keep
  return {{{RLIMIT_CORE, 0},
           {RLIMIT_MEMLOCK, 0},
           {RLIMIT_MSGQUEUE, 0},
           {RLIMIT_NPROC, nproc},
           {RLIMIT_NOFILE, nofile},
           {-1, 0}}};
}

bool is_proxy_variable(const std::string& assignment) {
  for (const char* name : {"https_proxy=", "HTTPS_PROXY=", "http_proxy=", "HTTP_PROXY=",
                           "no_proxy=", "NO_PROXY=", "grpc_proxy="})
    if (assignment.rfind(name, 0) == 0) return true;
  return false;
}

// The descriptors land at kChannelFd .. kChannelFd + 5 in this order.
static_assert(ipc::kLogRingFd == ipc::kChannelFd + 5);

// In the child, before exec: only async-signal-safe calls, report by exit code.
[[noreturn]] void child_exec(const std::string& path, const char* name, const int (&sources)[6],
                             const SpawnEnvironment& env, const WorkerLimits& limits,
                             char* const* envp) {
  // Move every source above the target range first, so dup2 onto 3..8 can
  // never clobber a source that happens to sit there.
  int high[6];
  for (int i = 0; i < 6; ++i) {
    high[i] = sources[i] < 0 ? -1 : ::fcntl(sources[i], F_DUPFD, 64);
    if (sources[i] >= 0 && high[i] < 0) _exit(120);
  }
  for (int i = 0; i < 6; ++i) {
    int target = ipc::kChannelFd + i;
    if (high[i] < 0) {
      ::close(target);  // nothing inherited may sit at a well-known number
      continue;
    }
    if (::dup2(high[i], target) != target) _exit(121);
  }
  ::syscall(SYS_close_range, ipc::kLogRingFd + 1, ~0U, 0);

  if (env.switch_user) {
    // The bounding set is empty already (the supervisor emptied its own at
    // start, see privileges.h), and with the securebits it locked this change
    // of uid clears every capability.
    if (::setgroups(0, nullptr) != 0) _exit(122);
    if (::setresgid(env.gid, env.gid, env.gid) != 0) _exit(123);
    if (::setresuid(env.uid, env.uid, env.uid) != 0) _exit(124);
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(125);
  // After the credential change, which would clear it.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  for (const Limit* l = limits.items; l->resource >= 0; ++l) {
    rlimit now{};
    if (::getrlimit(l->resource, &now) != 0) _exit(127);
    if (l->value >= now.rlim_max) continue;
    rlimit lower{l->value, l->value};
    if (::setrlimit(l->resource, &lower) != 0) _exit(127);
  }
  // No directory of ours stays reachable through the cwd (it was the
  // supervisor's, e.g. a build tree); files the workers create: none.
  if (::chdir("/") != 0) _exit(128);
  ::umask(077);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);

  char* argv[] = {const_cast<char*>(name), nullptr};
  ::execve(path.c_str(), argv, envp);
  _exit(126);
}

}  // namespace

bool WorkerProcess::start(const SpawnEnvironment& env, std::string* error) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    *error = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);

  bool admin = kind_ == shm::WorkerKind::Admin;
  bool data_worker = !admin;
  const int sources[6] = {
      theirs.get(),
      admin ? env.control_ro_fd : env.control_fd,
      data_worker ? env.up_ready_fd : -1,
      data_worker ? env.down_ready_fd : -1,
      admin ? env.admin_socket_fd : -1,
      env.log_ring_fd,
  };
  std::vector<char*> envp;
  for (const auto& e : env.env) {
    // Web proxy settings may hold a password: only the uplink, which makes
    // the outbound connections, gets them.
    if (kind_ != shm::WorkerKind::Uplink && is_proxy_variable(e)) continue;
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);
  std::string name = path_.substr(path_.rfind('/') + 1);
  const WorkerLimits limits = limits_for(kind_);

  pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) child_exec(path_, name.c_str(), sources, env, limits, envp.data());

  pid_ = pid;
  ready_ = false;
  reported_syscall = -1;
  reported_arch = 0;
  budget.reset();
  channel_ = std::move(ours);
  int flags = ::fcntl(channel_.get(), F_GETFL);
  ::fcntl(channel_.get(), F_SETFL, flags | O_NONBLOCK);
  return true;
}

bool WorkerProcess::send_signal(int sig, const SpawnEnvironment& env) const {
  if (pid_ <= 0) return false;
  // Still root's (between fork and the change of uid), or ours: directly.
  if (::kill(pid_, sig) == 0) return true;
  if (errno != EPERM || !env.switch_user) return false;
  // The worker's pid cannot have been reused: it is our child and not yet
  // reaped (reaping happens only in the supervisor's loop, not here).
  pid_t helper = ::fork();
  if (helper < 0) return false;
  if (helper == 0) {
    if (::setresuid(env.uid, env.uid, env.uid) != 0) _exit(2);
    _exit(::kill(pid_, sig) == 0 ? 0 : 1);
  }
  int status = 0;
  while (::waitpid(helper, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string worker_directory() {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir(self);
    dir = dir.substr(0, dir.rfind('/'));
    if (::access((dir + "/kbgp-listener").c_str(), X_OK) == 0) return dir;
  }
  return PKGLIBEXECDIR;
}

}  // namespace kbgp
