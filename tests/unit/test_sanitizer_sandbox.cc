// Sanitizer builds (configure --enable-sanitizers): a report from inside a
// worker's seccomp filter reaches stderr whole (through SUMMARY, with a
// stack), and the process ends with the sanitizer's exit code 1, not by
// SIGSYS halfway through. The child is this test binary exec'd again with
// the environment the supervisor gives a worker
// (sandboxed_sanitizer_environment()), so the runtime reads the same options
// as a real worker. Other builds: workers get no sanitizer environment.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admin/sandbox_policy.h"
#include "common/ipc.h"
#include "common/sandbox.h"
#include "common/sanitizer_options.h"
#include "config.h"
#include "listener/sandbox_policy.h"
#include "uplink/sandbox_policy.h"

using namespace kbgp;

#ifdef KBGP_SANITIZERS

namespace {

constexpr const char* kPolicyVar = "KBGP_SANITIZER_CHILD_POLICY";
constexpr const char* kFaultVar = "KBGP_SANITIZER_CHILD_FAULT";

std::span<const SyscallRule> policy_named(std::string_view name) {
  if (name == "listener") return listener::sandbox_policy();
  if (name == "uplink") return uplink::sandbox_policy();
  return admin::sandbox_policy();
}

struct ChildRun {
  int status = 0;
  std::string output;  // stdout and stderr
  bool reported_violation = false;
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
  bool contains(std::string_view s) const { return output.find(s) != std::string::npos; }
};

// This binary again, running only the hidden child test case below, with a
// worker's sanitizer environment and a channel at fd 3 for SIGSYS reports.
ChildRun run_child(const std::string& policy, const std::string& fault) {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  REQUIRE(n > 0);
  exe[n] = '\0';
  std::vector<std::string> env = sandboxed_sanitizer_environment();
  env.push_back(std::string(kPolicyVar) + "=" + policy);
  env.push_back(std::string(kFaultVar) + "=" + fault);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char spec[] = "[sanitizer_child]";
  char* argv[] = {exe, spec, nullptr};

  int channel[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, channel) == 0);
  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::dup2(channel[1], ipc::kChannelFd) != ipc::kChannelFd) _exit(90);
    if (::dup2(out[1], 1) != 1 || ::dup2(out[1], 2) != 2) _exit(91);
    ::execve(exe, argv, envp.data());
    _exit(92);
  }
  ::close(channel[1]);
  ::close(out[1]);
  ChildRun run;
  char buf[4096];
  ssize_t got;
  while ((got = ::read(out[0], buf, sizeof buf)) > 0) run.output.append(buf, got);
  ::close(out[0]);
  REQUIRE(::waitpid(pid, &run.status, 0) == pid);
  ipc::SyscallViolation msg{};
  run.reported_violation =
      ::recv(channel[0], &msg, sizeof msg, MSG_DONTWAIT) == static_cast<ssize_t>(sizeof msg);
  ::close(channel[0]);
  return run;
}

// Out of the compiler's sight, so that neither fault is found or folded at
// compile time.
volatile int g_sixteen = 16;
volatile int g_int_max = INT_MAX;

void heap_overflow() {
  auto buffer = std::make_unique<char[]>(16);
  volatile char* p = buffer.get();
  p[g_sixteen] = 1;
}

}  // namespace

TEST_CASE("(child of the sanitizer sandbox test)", "[.][sanitizer_child]") {
  const char* policy = std::getenv(kPolicyVar);
  const char* fault = std::getenv(kFaultVar);
  REQUIRE(policy);
  REQUIRE(fault);
  std::string error;
  REQUIRE(install_seccomp(policy_named(policy), &error));
  std::string_view what = fault;
  if (what == "heap-overflow") {
    heap_overflow();
  } else if (what == "heap-overflow-in-thread") {
    std::thread(heap_overflow).join();
  } else if (what == "signed-overflow") {
    int sum = g_int_max + g_sixteen;
    g_sixteen = sum;
  }
  _exit(50);  // the fault was not caught
}

TEST_CASE("a sanitizer report from inside a worker's seccomp filter is printed whole") {
  for (std::string policy : {"listener", "uplink", "admin"}) {
    SECTION(policy + ": AddressSanitizer") {
      auto run = run_child(policy, "heap-overflow");
      INFO(run.output);
      CHECK(run.exit_code() == 1);
      CHECK_FALSE(run.reported_violation);
      CHECK(run.contains("ERROR: AddressSanitizer: heap-buffer-overflow"));
      CHECK(run.contains("#1 0x"));  // a stack, as module+offset
      CHECK(run.contains("SUMMARY: AddressSanitizer: heap-buffer-overflow"));
    }
    SECTION(policy + ": UndefinedBehaviorSanitizer") {
      auto run = run_child(policy, "signed-overflow");
      INFO(run.output);
      CHECK(run.exit_code() == 1);
      CHECK_FALSE(run.reported_violation);
      CHECK(run.contains("runtime error: signed integer overflow"));
    }
  }
  SECTION("uplink: AddressSanitizer in a thread made under the filter") {
    auto run = run_child("uplink", "heap-overflow-in-thread");
    INFO(run.output);
    CHECK(run.exit_code() == 1);
    CHECK_FALSE(run.reported_violation);
    CHECK(run.contains("SUMMARY: AddressSanitizer: heap-buffer-overflow"));
  }
}

TEST_CASE("sandboxed workers run without leak check and symbolizer, after our own options") {
  // Our own options as the test runner was given them, restored after.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const char* ubsan = std::getenv("UBSAN_OPTIONS");
  std::string saved_asan = asan ? asan : "", saved_ubsan = ubsan ? ubsan : "";
  ::setenv("ASAN_OPTIONS", "verbosity=0", 1);
  ::unsetenv("UBSAN_OPTIONS");
  auto env = sandboxed_sanitizer_environment();
  if (asan) ::setenv("ASAN_OPTIONS", saved_asan.c_str(), 1); else ::unsetenv("ASAN_OPTIONS");
  if (ubsan) ::setenv("UBSAN_OPTIONS", saved_ubsan.c_str(), 1);
  REQUIRE(env.size() == 2);
  CHECK(env[0] == "ASAN_OPTIONS=verbosity=0:detect_leaks=0:symbolize=0:color=never");
  CHECK(env[1] == "UBSAN_OPTIONS=symbolize=0:print_stacktrace=0:color=never");
}

#else

TEST_CASE("without --enable-sanitizers, workers get no sanitizer environment") {
  CHECK(sandboxed_sanitizer_environment().empty());
}

#endif  // KBGP_SANITIZERS
