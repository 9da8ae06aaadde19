// SIGHUP: the supervisor re-reads its environment file (supervisor/env_file.h)
// and applies what can change at run time (supervisor/env_reload.h). A file
// with an error, or values kbgp would refuse at start, changes nothing.
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "supervisor/env_reload.h"
#include "supervisor/supervisor.h"

namespace kbgp {

void Supervisor::reload_env_file() {
  const std::string& path = env_file_.path;
  if (path.empty()) {
    log::info("SIGHUP: no environment file to re-read (start kbgp with --env-file)");
    return;
  }
  EnvFile file = read_env_file(path);
  if (!file.errors.empty()) {
    for (const auto& e : file.errors)
      log::error("SIGHUP: bad line in the environment file", {{"file", path},
                                                               {"line", e.line},
                                                               {"key", e.key},
                                                               {"error", describe(e)}});
    log::error("SIGHUP: environment file not applied; nothing changed",
               {{"file", path}, {"errors", file.errors.size()}});
    return;
  }
  if (file.missing) log::warn("SIGHUP: environment file missing; read as empty", {{"file", path}});

  // The environment kbgp would start with now: the file's values, else
  // the process environment -- but a variable the file had at start and
  // dropped since is unset (under systemd, the process environment is the
  // old file). The token's copy in the environment was wiped at start.
  const EnvValues& now = file.values;
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    if (auto it = now.find(name); it != now.end()) return it->second;
    if (env_file_.at_start.count(name)) return std::nullopt;
    if (name == "KENTIK_API_TOKEN") return options_.token;
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
  ParseOutcome outcome = parse_options(env_file_.args, lookup);
  if (outcome.kind != ParseOutcome::Kind::Run) {
    log::error("SIGHUP: environment file not applied; nothing changed",
               {{"file", path}, {"error", outcome.message}});
    return;
  }

  auto changes = env_changes(env_file_.at_start, env_file_.applied, now, env_file_.flags_given);
  if (changes.empty()) log::info("SIGHUP: environment file re-read; nothing changed", {{"file", path}});
  for (const auto& c : changes) {
    switch (c.kind) {
      case EnvChange::Kind::Applied:
        // The only run-time variable (env_reload.cc): KENTIK_LOG_LEVEL.
        if (c.key == "KENTIK_LOG_LEVEL") {
          log::Level before = options_.log_level;
          log::Level after = outcome.options.log_level;
          std::string line = c.key + ": " + log::level_name(before) + " -> " + log::level_name(after);
          // Written while the more verbose of the two levels is in force,
          // so raising the level to warn still shows it.
          if (after >= before) log::info(line, {{"key", c.key}, {"file", path}});
          apply_log_level(after);
          if (after < before) log::info(line, {{"key", c.key}, {"file", path}});
        }
        break;
      case EnvChange::Kind::OverriddenByFlag:
        log::info(c.key + " changed in the environment file; the command line's --" + c.flag +
                      " overrides it",
                  {{"key", c.key}, {"flag", "--" + c.flag}, {"file", path}});
        break;
      case EnvChange::Kind::NeedsRestart:
        // Never the value: it may be the token or a proxy password.
        log::warn(c.key + " changed in the environment file; needs a restart",
                  {{"key", c.key}, {"file", path}});
        break;
      case EnvChange::Kind::Unused:
        log::info(c.key + " changed in the environment file; not used by kbgp",
                  {{"key", c.key}, {"file", path}});
        break;
    }
  }
  env_file_.applied = now;
}

void Supervisor::apply_log_level(log::Level level) {
  options_.log_level = level;  // workers started from now on get it in WorkerInit
  log::set_level(level);
  auto msg = ipc::make<ipc::SetLogLevel>(ipc::MsgType::SetLogLevel);
  msg.log_level = static_cast<uint8_t>(level);
  for (auto& w : workers_) {
    if (!w.running()) continue;
    if (!ipc::send_msg(w.channel(), &msg, sizeof msg))
      log::warn("cannot tell a worker the new log level", {{"worker", ipc::worker_name(w.kind())},
                                                           {"error", std::strerror(errno)}});
  }
}

}  // namespace kbgp
