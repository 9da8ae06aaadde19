// kbgp: the supervisor. Parses flags and environment, binds the listeners,
// starts the unprivileged workers and relays accepted device connections to
// them. It never creates a gRPC object and parses no network input.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/log.h"
#include "config.h"
#include "supervisor/options.h"
#include "supervisor/supervisor.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto outcome = kbgp::parse_options(args, [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  });
  switch (outcome.kind) {
    case kbgp::ParseOutcome::Kind::Help:
      std::fputs(outcome.message.c_str(), stdout);
      return 0;
    case kbgp::ParseOutcome::Kind::Version:
      std::printf("kbgp %s\n", PACKAGE_VERSION);
      return 0;
    case kbgp::ParseOutcome::Kind::Error:
      std::fprintf(stderr, "kbgp: %s\n", outcome.message.c_str());
      return 2;
    case kbgp::ParseOutcome::Kind::Run:
      break;
  }
  // The token must not stay readable in /proc/<pid>/environ of a process
  // that outlives start-up; our own copy lives in `outcome.options`. That
  // file shows the environment block the kernel set up at exec, which
  // unsetenv does not touch: overwrite the value there first.
  if (char* token = std::getenv("KENTIK_API_TOKEN")) std::memset(token, 'x', std::strlen(token));
  ::unsetenv("KENTIK_API_TOKEN");
  // A token given on the command line shows in `ps` and /proc/<pid>/cmdline:
  // blank it there (the documented way is the environment file).
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool flag_alone = arg == "--token" || arg == "-token";
    bool flag_joined = arg.rfind("--token=", 0) == 0 || arg.rfind("-token=", 0) == 0;
    if (flag_joined) {
      for (char* p = std::strchr(argv[i], '=') + 1; *p; ++p) *p = 'x';
    } else if (flag_alone && i + 1 < argc) {
      for (char* p = argv[i + 1]; *p; ++p) *p = 'x';
    }
  }
  kbgp::log::init("supervisor", outcome.options.log_level,
                  outcome.options.human_logs ? kbgp::log::Format::Human : kbgp::log::Format::Json);
  kbgp::Supervisor supervisor(std::move(outcome.options));
  if (int rc = supervisor.setup(); rc != 0) return rc;
  return supervisor.run();
}
