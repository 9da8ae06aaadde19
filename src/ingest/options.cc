#include "ingest/options.h"

#include "common/decimal.h"

#include <cstdint>
#include <functional>
#include <optional>

#include "common/version.h"
#include "config.h"

namespace kbgp::ingest {

namespace {

constexpr uint32_t kMaxSeconds = 86400 * 365;

std::optional<uint64_t> parse_unsigned(const std::string& text, uint64_t max) {
  return kbgp::parse_decimal(text, max);
}

std::optional<bool> parse_bool(const std::string& text) {
  if (text == "true" || text == "1" || text == "yes") return true;
  if (text == "false" || text == "0" || text == "no") return false;
  return std::nullopt;
}

OptionsExit usage_error(const std::string& message) {
  return OptionsExit{2, "kbgp-ingest: " + message + " (see kbgp-ingest --help)"};
}

}  // namespace

std::string version_text() { return version_line("kbgp-ingest"); }

std::string usage_text() {
  return "Usage: kbgp-ingest --listen ADDR:PORT --credentials FILE --registry FILE\n"
         "                   (--tls-cert FILE --tls-key FILE | --plaintext) [options]\n"
         "\n"
         "Reference backend for kbgp: authenticates agents, answers Control requests\n"
         "from a device registry and relays each proxied BGP session to its collector.\n"
         "\n"
         "  --listen ADDR:PORT         gRPC listen address, e.g. 127.0.0.1:9443 or [::1]:9443\n"
         "  --tls-cert FILE            PEM certificate chain of the server (TLS is the default)\n"
         "  --tls-key FILE             PEM private key of the server\n"
         "  --plaintext                serve without TLS (only for tests on loopback)\n"
         "  --credentials FILE         JSON credentials file (email + token per caller)\n"
         "  --registry FILE            JSON device registry (reloaded on SIGHUP)\n"
         "  --log-level LEVEL          trace, debug, info, warn, error (default info)\n"
         "  --human-logs               human-readable logs instead of JSON lines\n"
         "  --grace-period SECONDS     keep a collector connection this long after its Data\n"
         "                             stream broke, waiting for a resume (default 60)\n"
         "  --keepalive-interval SECONDS\n"
         "                             application keepalive period on Control streams,\n"
         "                             0 = none (default 30)\n"
         "  --control-ttl SECONDS      ttl_seconds of Control answers (default 600)\n"
         "  --control-ttl-counter N    ttl_counter of accepting Control answers: how often\n"
         "                             an agent may reuse one from its cache, 0 = no limit\n"
         "                             (default 0)\n"
         "  --md5-push=BOOL            push devices' TCP-MD5 keys to agents unasked, at\n"
         "                             Control stream start, every half ttl and on reload\n"
         "                             (default true; false: agents ask on a signed SYN)\n"
         "  --export-listen ADDR:PORT  HTTP(S) endpoint for agents' log and metrics export\n"
         "                             (POST .../logs, .../metrics; TLS unless --plaintext)\n"
         "  --export-dir DIR           where received export batches are stored\n"
         "  --version                  print the version and exit\n"
         "  -h, --help                 print this help and exit\n"
         "\n"
         "Flags take \"--flag value\" or \"--flag=value\", with one or two dashes.\n"
         "Signals: SIGHUP reloads registry and credentials, SIGUSR1 restarts every Data\n"
         "stream gracefully, SIGTERM/SIGINT shut down. See kbgp-ingest(8).\n";
}

std::variant<Options, OptionsExit> parse_options(const std::vector<std::string>& args) {
  Options o;
  bool have_listen = false;

  auto seconds = [](uint32_t& out) {
    return [&out](const std::string& flag, const std::string& v) -> std::optional<std::string> {
      auto n = parse_unsigned(v, kMaxSeconds);
      if (!n) return flag + ": expected a number of seconds from 0 to " +
                     std::to_string(kMaxSeconds) + ", got \"" + v + "\"";
      out = static_cast<uint32_t>(*n);
      return std::nullopt;
    };
  };
  auto count = [](uint32_t& out) {
    return [&out](const std::string& flag, const std::string& v) -> std::optional<std::string> {
      auto n = parse_unsigned(v, UINT32_MAX);
      if (!n) return flag + ": expected a count from 0 to " + std::to_string(UINT32_MAX) +
                     ", got \"" + v + "\"";
      out = static_cast<uint32_t>(*n);
      return std::nullopt;
    };
  };
  auto path = [](std::string& out) {
    return [&out](const std::string& flag, const std::string& v) -> std::optional<std::string> {
      if (v.empty()) return flag + ": expected a file name, got an empty value";
      out = v;
      return std::nullopt;
    };
  };
  using Setter = std::function<std::optional<std::string>(const std::string&, const std::string&)>;
  struct ValueFlag {
    const char* name;
    Setter set;
  };
  const ValueFlag value_flags[] = {
      {"listen",
       [&](const std::string& flag, const std::string& v) -> std::optional<std::string> {
         auto e = Endpoint::parse(v);
         if (!e) return flag + ": expected ADDR:PORT with an IP address (IPv6 as [::1]:9443), "
                               "got \"" + v + "\"";
         o.listen = *e;
         have_listen = true;
         return std::nullopt;
       }},
      {"export-listen",
       [&](const std::string& flag, const std::string& v) -> std::optional<std::string> {
         auto e = Endpoint::parse(v);
         if (!e) return flag + ": expected ADDR:PORT with an IP address (IPv6 as [::1]:9444), "
                               "got \"" + v + "\"";
         o.export_listen = *e;
         return std::nullopt;
       }},
      {"export-dir", path(o.export_dir)},
      {"tls-cert", path(o.tls_cert)},
      {"tls-key", path(o.tls_key)},
      {"credentials", path(o.credentials)},
      {"registry", path(o.registry)},
      {"log-level",
       [&](const std::string& flag, const std::string& v) -> std::optional<std::string> {
         auto level = log::parse_level(v);
         if (!level) return flag + ": expected trace, debug, info, warn, error, critical or off, "
                                   "got \"" + v + "\"";
         o.log_level = *level;
         return std::nullopt;
       }},
      {"grace-period", seconds(o.grace_period_s)},
      {"keepalive-interval", seconds(o.keepalive_interval_s)},
      {"control-ttl", seconds(o.control_ttl_s)},
      {"control-ttl-counter", count(o.control_ttl_counter)},
  };
  struct BoolFlag {
    const char* name;
    bool* target;
  };
  const BoolFlag bool_flags[] = {{"plaintext", &o.plaintext},
                                 {"human-logs", &o.human_logs},
                                 {"md5-push", &o.md5_push}};

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      return usage_error("unexpected argument \"" + arg + "\"");
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> inline_value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      inline_value = body.substr(eq + 1);
      body.resize(eq);
    }
    std::string flag = "--" + body;
    if (body == "h" || body == "help") {
      if (inline_value) return usage_error(flag + " takes no value");
      return OptionsExit{0, usage_text()};
    }
    if (body == "version") {
      if (inline_value) return usage_error(flag + " takes no value");
      return OptionsExit{0, version_text()};
    }
    bool handled = false;
    for (const auto& bf : bool_flags) {
      if (body != bf.name) continue;
      handled = true;
      if (inline_value) {
        auto b = parse_bool(*inline_value);
        if (!b) return usage_error(flag + ": expected true or false, got \"" + *inline_value + "\"");
        *bf.target = *b;
      } else {
        *bf.target = true;
      }
    }
    for (const auto& vf : value_flags) {
      if (handled || body != vf.name) continue;
      handled = true;
      std::string value;
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size() && !(args[i + 1].size() > 1 && args[i + 1][0] == '-')) {
        value = args[++i];
      } else {
        return usage_error(flag + ": missing value");
      }
      if (auto err = vf.set(flag, value)) return usage_error(*err);
    }
    if (!handled) return usage_error("unknown flag " + arg);
  }

  if (!have_listen) return usage_error("--listen is required");
  if (o.export_listen.has_value() != !o.export_dir.empty())
    return usage_error("--export-listen and --export-dir go together");
  if (o.credentials.empty()) return usage_error("--credentials is required");
  if (o.registry.empty()) return usage_error("--registry is required");
  if (o.plaintext) {
    if (!o.tls_cert.empty() || !o.tls_key.empty()) {
      return usage_error("--plaintext cannot be combined with --tls-cert/--tls-key");
    }
  } else if (o.tls_cert.empty() && o.tls_key.empty()) {
    return usage_error("TLS is the default: give --tls-cert and --tls-key "
                       "(or --plaintext to serve without TLS)");
  } else if (o.tls_cert.empty()) {
    return usage_error("--tls-key needs --tls-cert");
  } else if (o.tls_key.empty()) {
    return usage_error("--tls-cert needs --tls-key");
  }
  return o;
}

}  // namespace kbgp::ingest
