// kbgp-uplink: the unprivileged worker that owns every gRPC connection to
// the backend. Started by the supervisor (fork + exec) with its descriptors
// at fixed numbers (common/ipc.h); it never forks.
#include <poll.h>
#include <strings.h>

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "common/ipc.h"
#include "common/log.h"
#include "common/sandbox.h"
#include "common/test_trigger.h"
#include "common/worker.h"
#include "config.h"
#include "uplink/exporter.h"
#include "uplink/grpc_channels.h"
#include "uplink/proxy_setup.h"
#include "uplink/sandbox_policy.h"
#include "uplink/uplink.h"

namespace {

using namespace kbgp;

template <size_t N>
std::string bounded(const char (&field)[N]) {
  return std::string(field, strnlen(field, N));
}

// Reads a whole (small) file from a descriptor: the CA bundle, at most 4 MiB.
std::optional<std::string> read_all(int fd) {
  constexpr size_t kMaxBytes = 4 * 1024 * 1024;
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxBytes) return std::nullopt;
  }
}

// Waits (bounded) for UplinkInit, the message with the secrets.
std::optional<uplink::UplinkConfig> read_uplink_init(const WorkerContext& ctx) {
  pollfd pfd{ctx.channel.get(), POLLIN, 0};
  if (::poll(&pfd, 1, 10000) != 1) {
    log::error("no UplinkInit from the supervisor");
    return std::nullopt;
  }
  ipc::Received msg = ipc::recv_msg(ctx.channel.get(), nullptr, shm::WorkerKind::Uplink);
  if (msg.status != ipc::Received::Status::Ok || msg.type() != ipc::MsgType::UplinkInit) {
    log::error("expected UplinkInit from the supervisor", {{"error", msg.error}});
    return std::nullopt;
  }
  const auto& init = msg.as<ipc::UplinkInit>();
  uplink::UplinkConfig config;
  config.target = bounded(init.target);
  config.ca_file = bounded(init.ca_file);
  auto pem = read_all(msg.fds.at(0).get());
  if (!pem) {
    log::error("cannot read the CA certificates handed over by the supervisor",
               {{"ca-file", config.ca_file}});
    return std::nullopt;
  }
  config.ca_pem = std::move(*pem);
  config.tls_server_name = bounded(init.tls_server_name);
  config.insecure = init.insecure != 0;
  config.log_export = init.log_export != 0;
  config.log_export_url = bounded(init.log_export_url);
  config.metrics_export_url = bounded(init.metrics_export_url);
  config.multi = init.multi ? init.multi : 10;
  config.agent.email = bounded(init.api_email);
  config.agent.token = bounded(init.api_token);
  config.agent.site_id = init.site_id;
  config.agent.version = PACKAGE_VERSION;
  config.agent.instance = bounded(ctx.control->config.instance_id);
  // The token now lives only in `config`.
  explicit_bzero(msg.bytes.data(), msg.bytes.size());
  if (config.target.empty()) {
    log::error("UplinkInit has no target");
    return std::nullopt;
  }
  return config;
}

}  // namespace

int main() {
  std::signal(SIGPIPE, SIG_IGN);
  auto ctx = worker_bootstrap(shm::WorkerKind::Uplink, true);
  if (!ctx) return 1;
  auto config = read_uplink_init(*ctx);
  if (!config) return 1;
  std::string error;
#ifdef KBGP_TEST_TRIGGERS
  test_trigger::arm(shm::WorkerKind::Uplink);
#endif
  // Confined before the first gRPC object exists (TSYNC covers later threads
  // anyway) and before any byte from the backend is read.
  if (!drop_worker_privileges(&error) || !install_seccomp(uplink::sandbox_policy(), &error)) {
    log::error("cannot confine the uplink", {{"error", error}});
    return 1;
  }
  // Before the first channel: gRPC must find the relay, never the variables.
  auto web_proxy = uplink::setup_web_proxy(*config, &error);
  if (!web_proxy) {
    log::error("cannot use the web proxy settings", {{"error", error}});
    return 1;
  }
  auto factory = uplink::ChannelFactory::create(*config, &error);
  if (!factory) {
    log::error("cannot set up TLS", {{"error", error}});
    return 1;
  }
  // Log and metrics export on a thread of its own; without it the agent
  // still relays (the error is logged).
  uplink::ExportSettings exports;
  exports.logs = config->log_export;
  exports.log_url = config->log_export_url;
  exports.metrics_url = config->metrics_export_url;
  exports.email = config->agent.email;
  exports.token = config->agent.token;
  exports.instance = config->agent.instance;
  exports.version = config->agent.version;
  exports.ca_pem = config->ca_pem;
  auto exporter = uplink::Exporter::start(std::move(exports), &web_proxy->settings, ctx->control,
                                          &error);
  if (!exporter) log::error("log and metrics export unavailable", {{"error", error}});
  int rc;
  {
    uplink::Uplink worker(*ctx, std::move(*config), std::move(*factory));
    rc = worker.run();
    if (uplink::g_live_streams.load() != 0) {
      // A stream did not finish in time; destroying the channels and
      // sessions under it would crash. Leave without destructors.
      std::_Exit(rc);
    }
  }
  log::info("uplink stopped");
  return rc;
}
