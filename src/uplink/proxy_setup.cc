#include "uplink/proxy_setup.h"

#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "config.h"

namespace kbgp::uplink {

std::optional<WebProxy> setup_web_proxy(UplinkConfig& config, std::string* error) {
  WebProxy out;
  auto settings = proxy_settings_from_env(
      [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        if (!v) return std::nullopt;
        return std::string(v);
      },
      error);
  // Whatever they said, gRPC (and any other library) must not see them.
  // /proc/<pid>/environ shows the block the kernel set up at exec, which
  // unsetenv leaves alone: overwrite the values there first (a proxy URL
  // may hold a password; our copy is in `settings`).
  for (const auto& name : proxy_variable_names()) {
    if (char* value = std::getenv(name.c_str())) std::memset(value, 'x', std::strlen(value));
    ::unsetenv(name.c_str());
  }
  if (!settings) return std::nullopt;
  out.settings = std::move(*settings);
  for (const auto& note : out.settings.notes) log::warn(note);

  std::string host;
  uint16_t port = 0;
  if (!split_host_port(config.target, &host, &port)) {
    *error = "target \"" + config.target + "\" is not host:port";
    return std::nullopt;
  }
  const ProxyUrl* proxy = out.settings.for_target(host, port, true);
  if (!proxy) {
    if (out.settings.https)
      log::info("the target is in NO_PROXY: gRPC connects directly",
                {{"target", config.target}, {"proxy", out.settings.https->display()}});
    return out;
  }
  ProxyRelay::Config rc;
  rc.upstream = *proxy;
  rc.allowed_targets = {config.target};
  rc.user_agent = std::string("kbgp/") + PACKAGE_VERSION;
  out.relay = ProxyRelay::start(std::move(rc), error);
  if (!out.relay) {
    *error = "web proxy relay: " + *error;
    return std::nullopt;
  }
  config.grpc_proxy = out.relay->grpc_proxy_url();
  log::info("gRPC connections go through the web proxy",
            {{"proxy", proxy->display()},
             {"variable", "$" + proxy->variable},
             {"target", config.target},
             {"relay", "127.0.0.1:" + std::to_string(out.relay->port())}});
  return out;
}

}  // namespace kbgp::uplink
