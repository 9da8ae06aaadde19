// kbgp-ingest: the reference backend for kbgp agents. See kbgp-ingest(8).
//
// Threads: main (signals via signalfd), gRPC's callback threads (accept and
// check calls, hand stream events over), and one libevent loop thread that
// owns every collector socket, timer and session.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <variant>

#include "common/log.h"
#include "common/uuid.h"
#include "ingest/backend.h"
#include "ingest/export_server.h"
#include "ingest/export_store.h"
#include "ingest/grpc_server.h"
#include "ingest/json_reader.h"
#include "ingest/options.h"
#include "ingest/proxy_service.h"
#include "ingest/signals.h"

namespace {

using namespace kbgp::ingest;

// A short id for this backend instance, new at every start: agents send it
// back as backend-pin so a Data call reaches the backend that answered the
// Control request.
std::string make_backend_pin() {
  uint8_t id[16];
  kbgp::uuid_v4(id);
  char buf[9];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
  return buf;
}

int config_error(const std::string& flag, const std::string& error) {
  std::cerr << "kbgp-ingest: " << flag << ": " << error << std::endl;
  return 2;
}

int run(const Options& o) {
  std::string error;
  auto creds = Credentials::load(o.credentials, &error);
  if (!creds) return config_error("--credentials", error);
  auto registry = Registry::load(o.registry, &error);
  if (!registry) return config_error("--registry", error);
  std::string cert_pem, key_pem;
  if (!o.plaintext) {
    if (!read_text_file(o.tls_cert, &cert_pem, &error)) return config_error("--tls-cert", error);
    if (cert_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return config_error("--tls-cert", o.tls_cert + " holds no PEM certificate");
    }
    if (!read_text_file(o.tls_key, &key_pem, &error)) return config_error("--tls-key", error);
    if (key_pem.find("PRIVATE KEY-----") == std::string::npos) {
      return config_error("--tls-key", o.tls_key + " holds no PEM private key");
    }
  }

  kbgp::log::init("ingest", o.log_level,
                  o.human_logs ? kbgp::log::Format::Human : kbgp::log::Format::Json);
  // Before any thread exists, so every thread inherits the blocked mask.
  SignalWaiter signals({SIGTERM, SIGINT, SIGHUP, SIGUSR1});
  ::signal(SIGPIPE, SIG_IGN);  // a collector that vanished is an error code, not a signal
  route_grpc_logs();

  size_t devices = registry->size();
  ConfigStore config(o.credentials, o.registry, std::move(*creds), std::move(*registry));
  EventLoop loop;
  loop.start();
  Backend backend{o, make_backend_pin(), config, loop, {}, {}};
  ProxyServiceImpl service(backend);
  int port = 0;
  auto server = start_grpc_server(o, cert_pem, key_pem, &service, &port, &error);
  if (!server) {
    kbgp::log::error("cannot start the gRPC server", {{"error", error}});
    loop.stop({});
    return 1;
  }
  kbgp::Endpoint bound = o.listen;
  bound.port = static_cast<uint16_t>(port);
  kbgp::log::info("listening", {{"address", bound.to_string()},
                                {"tls", o.plaintext ? "false" : "true"},
                                {"backend_pin", backend.backend_pin},
                                {"devices", devices},
                                {"grace_period_s", o.grace_period_s},
                                {"keepalive_interval_s", o.keepalive_interval_s},
                                {"control_ttl_s", o.control_ttl_s},
                                {"control_ttl_counter", o.control_ttl_counter},
                                {"pid", static_cast<int64_t>(::getpid())}});

  // Agents' log and metrics export (docs/export.md).
  std::unique_ptr<ExportServer> exports;
  if (o.export_listen) {
    auto store = ExportStore::open(o.export_dir, [&config] { return config.credentials(); }, &error);
    kbgp::Endpoint export_bound;
    if (store)
      exports = ExportServer::start(*o.export_listen, o.plaintext ? "" : cert_pem,
                                    o.plaintext ? "" : key_pem, std::move(store), &export_bound,
                                    &error);
    if (!exports) {
      kbgp::log::error("cannot start the export endpoint", {{"error", error}});
      loop.post([&service] { service.close_everything(); });
      server->Shutdown(std::chrono::system_clock::now());
      loop.stop([&service] { service.close_everything(); });
      return 1;
    }
    kbgp::log::info("export endpoint listening", {{"address", export_bound.to_string()},
                                                   {"tls", o.plaintext ? "false" : "true"},
                                                   {"dir", o.export_dir}});
  }

  for (;;) {
    int sig = signals.wait();
    if (sig == SIGHUP) {
      config.reload();
      loop.post([&service] { service.registry_reloaded(); });
    } else if (sig == SIGUSR1) {
      loop.post([&service] { service.restart_all_data_streams(); });
    } else {
      kbgp::log::info("shutting down", {{"signal", ::strsignal(sig)}});
      break;
    }
  }
  // Streams never end by themselves: end them now. Calls still open after
  // the deadline (e.g. started meanwhile) are cancelled; their handlers
  // finish on the loop thread, which keeps running until the server is down.
  exports.reset();
  loop.post([&service] { service.close_everything(); });
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
  loop.stop([&service] { service.close_everything(); });
  server.reset();
  kbgp::log::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parse_options(args);
  if (auto* done = std::get_if<OptionsExit>(&parsed)) {
    (done->code == 0 ? std::cout : std::cerr) << done->text << (done->text.ends_with('\n') ? "" : "\n");
    return done->code;
  }
  try {
    return run(std::get<Options>(parsed));
  } catch (const std::exception& e) {
    std::cerr << "kbgp-ingest: fatal: " << e.what() << std::endl;
    return 1;
  }
}
