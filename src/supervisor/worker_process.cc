#include "supervisor/worker_process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/ipc.h"

namespace kbgp {

namespace {

// In the child, before exec: only async-signal-safe calls, report by exit code.
[[noreturn]] void child_exec(const std::string& path, const char* name, const int (&sources)[5],
                             const SpawnEnvironment& env, char* const* envp) {
  // Move every source above the target range first, so dup2 onto 3..7 can
  // never clobber a source that happens to sit there.
  int high[5];
  for (int i = 0; i < 5; ++i) {
    high[i] = sources[i] < 0 ? -1 : ::fcntl(sources[i], F_DUPFD, 64);
    if (sources[i] >= 0 && high[i] < 0) _exit(120);
  }
  for (int i = 0; i < 5; ++i) {
    int target = ipc::kChannelFd + i;
    if (high[i] < 0) {
      ::close(target);  // nothing inherited may sit at a well-known number
      continue;
    }
    if (::dup2(high[i], target) != target) _exit(121);
  }
  ::syscall(SYS_close_range, ipc::kAdminSocketFd + 1, ~0U, 0);

  if (env.switch_user) {
    // While still root: empty the bounding set, so nothing the worker execs
    // could ever regain a capability.
    for (int cap = 0; cap <= 63; ++cap) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (::setgroups(0, nullptr) != 0) _exit(122);
    if (::setresgid(env.gid, env.gid, env.gid) != 0) _exit(123);
    if (::setresuid(env.uid, env.uid, env.uid) != 0) _exit(124);
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(125);
  // After the credential change, which would clear it.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
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
  const int sources[5] = {
      theirs.get(),
      admin ? env.control_ro_fd : env.control_fd,
      data_worker ? env.up_ready_fd : -1,
      data_worker ? env.down_ready_fd : -1,
      admin ? env.admin_socket_fd : -1,
  };
  std::vector<char*> envp;
  for (const auto& e : env.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::string name = path_.substr(path_.rfind('/') + 1);

  pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) child_exec(path_, name.c_str(), sources, env, envp.data());

  pid_ = pid;
  ready_ = false;
  channel_ = std::move(ours);
  int flags = ::fcntl(channel_.get(), F_GETFL);
  ::fcntl(channel_.get(), F_SETFL, flags | O_NONBLOCK);
  return true;
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
