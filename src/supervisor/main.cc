// kbgp: the supervisor. Parses flags and environment, binds the listeners,
// starts the unprivileged workers and relays accepted device connections to
// them. It never creates a gRPC object and parses no network input.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "common/log.h"
#include "common/version.h"
#include "config.h"
#include "supervisor/options.h"
#include "supervisor/supervisor.h"

namespace {

std::optional<std::string> from_environment(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

// --env-file: read now as if it were part of the environment (its values
// win over the environment's, as when systemd loads it), and kept for
// SIGHUP (supervisor_reload.cc). False after printing why it is unusable.
bool load_env_file(const std::vector<std::string>& args, kbgp::EnvFileState* state,
                   bool* missing) {
  auto path = kbgp::env_file_argument(args, from_environment);
  if (!path) return true;
  std::error_code ec;
  // Absolute: the supervisor changes to / before SIGHUP can come.
  state->path = std::filesystem::absolute(*path, ec).string();
  if (ec) state->path = *path;
  kbgp::EnvFile file = kbgp::read_env_file(state->path);
  if (!file.errors.empty()) {
    // --help and --version work whatever the file holds.
    auto plain = kbgp::parse_options(args, from_environment);
    if (plain.kind == kbgp::ParseOutcome::Kind::Help ||
        plain.kind == kbgp::ParseOutcome::Kind::Version)
      return true;
    for (const auto& e : file.errors)
      std::fprintf(stderr, "kbgp: --env-file %s: %s\n", state->path.c_str(), kbgp::describe(e).c_str());
    return false;
  }
  *missing = file.missing;
  for (const auto& [key, value] : file.values) ::setenv(key.c_str(), value.c_str(), 1);
  state->at_start = file.values;
  state->applied = file.values;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  kbgp::EnvFileState env_file;
  bool env_file_missing = false;
  if (!load_env_file(args, &env_file, &env_file_missing)) return 2;
  auto outcome = kbgp::parse_options(args, from_environment);
  switch (outcome.kind) {
    case kbgp::ParseOutcome::Kind::Help:
      std::fputs(outcome.message.c_str(), stdout);
      return 0;
    case kbgp::ParseOutcome::Kind::Version:
      std::printf("%s\n", kbgp::version_line("kbgp").c_str());
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
  if (env_file_missing)
    kbgp::log::warn("environment file missing; started without it (SIGHUP reads it once it exists)",
                    {{"file", env_file.path}});
  env_file.args = args;  // before the token in argv was blanked: parsed again on SIGHUP
  env_file.flags_given = outcome.flags_given;
  kbgp::Supervisor supervisor(std::move(outcome.options), std::move(env_file));
  if (int rc = supervisor.setup(); rc != 0) return rc;
  return supervisor.run();
}
