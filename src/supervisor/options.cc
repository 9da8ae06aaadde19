#include "supervisor/options.h"

#include "common/decimal.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "uplink/export_url.h"
#include "uplink/proxy_config.h"

namespace kbgp {

namespace {

enum class ValueKind { Bool, String, UInt, Port, Listen, Level, Region };

struct FlagSpec {
  const char* name;
  ValueKind kind;
  const char* env;  // nullptr: no environment variable
  const char* type_text;
  const char* help;
};

// The vendor's table first (same names, types and variables), then ours.
const FlagSpec kFlags[] = {
    {"disable-log-export", ValueKind::Bool, nullptr, "bool", "Disable log export to Kentik"},
    {"email", ValueKind::String, "KENTIK_API_EMAIL", "string", "Kentik API email"},
    {"enable-md5-support", ValueKind::Bool, "KENTIK_ENABLE_MD5", "bool",
     "Enable MD5 password support (requires root)"},
    {"human-logs", ValueKind::Bool, nullptr, "bool", "Enable human-readable logs"},
    {"insecure", ValueKind::Bool, nullptr, "bool", "Connect over insecure HTTP to the target"},
    {"listen", ValueKind::Listen, nullptr, "string",
     "Listen address(es) to bind to, comma-separated or repeated (default 0.0.0.0:179,[::]:179)"},
    {"log-export-url", ValueKind::String, nullptr, "string",
     "URL to export logs to (default \"https://grpc.api.kentik.com/agents/v202204/logs\")"},
    {"log-level", ValueKind::Level, "KENTIK_LOG_LEVEL", "string",
     "Log level: trace, debug, info, warn, error (default \"info\")"},
    {"md5-listen-interface", ValueKind::String, nullptr, "string",
     "Network interface to capture connection attempts on (default \"any\")"},
    {"metrics-addr", ValueKind::String, nullptr, "string",
     "Metrics endpoint bind address (default \"127.0.0.1\")"},
    {"metrics-export-url", ValueKind::String, nullptr, "string",
     "URL to export metrics to (default \"https://grpc.api.kentik.com/agents/v202204/metrics\")"},
    {"metrics-port", ValueKind::Port, nullptr, "string", "Metrics endpoint port (default 20920)"},
    {"multi", ValueKind::UInt, nullptr, "int",
     "Multiplex N client connections over 1 gRPC connection (default 10)"},
    {"region", ValueKind::Region, "KENTIK_REGION", "string",
     "Kentik environment/region: iad1 (US, default) or fra1 (EU)"},
    {"site-id", ValueKind::UInt, "KENTIK_SITE", "int",
     "Kentik site ID to look devices up in (default means any site)"},
    {"target", ValueKind::String, nullptr, "string",
     "Target for proxied BGP sessions (overrides region) (default \"grpc.api.kentik.com:443\")"},
    {"token", ValueKind::String, "KENTIK_API_TOKEN", "string", "Kentik API token"},
    {"version", ValueKind::Bool, nullptr, "bool", "Version"},
    {"user", ValueKind::String, "KBGP_USER", "string",
     "User the unprivileged workers run as (default \"kbgp\")"},
    {"tls-ca-file", ValueKind::String, "KBGP_TLS_CA_FILE", "string",
     "PEM file of CA certificates for the target (default: the system store)"},
    {"tls-server-name", ValueKind::String, "KBGP_TLS_SERVER_NAME", "string",
     "Name to verify in the target's certificate (default: the target's host)"},
    {"env-file", ValueKind::String, "KBGP_ENV_FILE", "string",
     "Environment file (KEY=VALUE lines) read at start and re-read on SIGHUP"},
};

const FlagSpec* find_flag(const std::string& name) {
  for (const auto& f : kFlags)
    if (name == f.name) return &f;
  return nullptr;
}

std::optional<bool> parse_bool(const std::string& v) {
  std::string s = v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "1" || s == "t" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "f" || s == "false" || s == "no" || s == "off" || s.empty()) return false;
  return std::nullopt;
}

// At most 10 digits: every flag's limit fits in 32 bits.
std::optional<uint64_t> parse_uint(const std::string& v, uint64_t max) {
  if (v.size() > 10) return std::nullopt;
  return parse_decimal(v, max);
}

struct Parser {
  Options opts;
  bool listen_given = false;
  bool target_given = false;
  bool version = false;
  std::string error;

  bool fail(const std::string& flag, const std::string& value, const std::string& accepted) {
    error = "invalid value \"" + value + "\" for --" + flag + ": " + accepted;
    return false;
  }

  bool apply(const FlagSpec& f, const std::string& value) {
    std::string name = f.name;
    switch (f.kind) {
      case ValueKind::Bool: {
        auto b = parse_bool(value);
        if (!b) return fail(name, value, "expected true or false");
        if (name == "disable-log-export") opts.disable_log_export = *b;
        else if (name == "enable-md5-support") opts.enable_md5 = *b;
        else if (name == "human-logs") opts.human_logs = *b;
        else if (name == "insecure") opts.insecure = *b;
        else if (name == "version") version = *b;
        return true;
      }
      case ValueKind::String:
        if (value.empty()) return fail(name, value, "expected a non-empty string");
        if (name == "email") opts.email = value;
        else if (name == "token") opts.token = value;
        else if (name == "log-export-url") opts.log_export_url = value;
        else if (name == "metrics-export-url") opts.metrics_export_url = value;
        else if (name == "md5-listen-interface") opts.md5_interface = value;
        else if (name == "user") opts.user = value;
        else if (name == "tls-ca-file") opts.tls_ca_file = value;
        else if (name == "tls-server-name") opts.tls_server_name = value;
        else if (name == "env-file") opts.env_file = value;
        else if (name == "metrics-addr") {
          if (!Endpoint::parse_address(value))
            return fail(name, value, "expected an IPv4 or IPv6 address");
          opts.metrics_addr = value;
        } else if (name == "target") {
          auto colon = value.rfind(':');
          auto port = colon == std::string::npos ? std::nullopt
                                                 : parse_uint(value.substr(colon + 1), 65535);
          if (colon == 0 || !port || *port == 0)
            return fail(name, value, "expected host:port (port 1-65535)");
          opts.target = value;
          target_given = true;
        }
        return true;
      case ValueKind::UInt: {
        auto n = parse_uint(value, 0xffffffffu);
        if (name == "multi") {
          if (!n || *n < 1 || *n > 1000) return fail(name, value, "expected an integer 1-1000");
          opts.multi = static_cast<uint32_t>(*n);
        } else {
          if (!n) return fail(name, value, "expected a non-negative integer");
          opts.site_id = static_cast<uint32_t>(*n);
        }
        return true;
      }
      case ValueKind::Port: {
        auto n = parse_uint(value, 65535);
        if (!n || *n == 0) return fail(name, value, "expected a port 1-65535");
        opts.metrics_port = static_cast<uint16_t>(*n);
        return true;
      }
      case ValueKind::Level: {
        auto level = log::parse_level(value);
        if (!level) return fail(name, value, "expected trace, debug, info, warn, error or off");
        opts.log_level = *level;
        return true;
      }
      case ValueKind::Region:
        if (!region_target(value)) return fail(name, value, "expected iad1 or fra1");
        opts.region = value;
        return true;
      case ValueKind::Listen: {
        if (!listen_given) opts.listen.clear();
        listen_given = true;
        std::stringstream ss(value);
        std::string item;
        bool any = false;
        while (std::getline(ss, item, ',')) {
          if (item.empty()) continue;
          auto ep = Endpoint::parse(item, true, 179);
          if (!ep || ep->port == 0)
            return fail(name, item, "expected ADDRESS[:PORT] with a port 1-65535 (e.g. 0.0.0.0:179, [::]:179)");
          if (std::find(opts.listen.begin(), opts.listen.end(), *ep) == opts.listen.end())
            opts.listen.push_back(*ep);
          any = true;
        }
        if (!any) return fail(name, value, "expected ADDRESS[:PORT] (e.g. 0.0.0.0:179, [::]:179)");
        return true;
      }
    }
    return true;
  }
};

}  // namespace

std::optional<std::string> region_target(const std::string& region) {
  if (region.empty() || region == "iad1" || region == "IAD1") return "grpc.api.kentik.com:443";
  if (region == "fra1" || region == "FRA1") return "grpc.api.kentik.eu:443";
  return std::nullopt;
}

std::optional<std::string> env_file_argument(const std::vector<std::string>& args,
                                             const EnvLookup& env) {
  std::optional<std::string> path = env("KBGP_ENV_FILE");
  if (path && path->empty()) path.reset();
  for (size_t i = 0; i < args.size(); ++i) {
    for (const char* prefix : {"--env-file", "-env-file"}) {
      std::string p = prefix;
      if (args[i] == p && i + 1 < args.size()) path = args[i + 1];
      else if (args[i].rfind(p + "=", 0) == 0) path = args[i].substr(p.size() + 1);
    }
  }
  return path;
}

std::optional<std::string> flag_of_variable(const std::string& variable) {
  for (const auto& f : kFlags)
    if (f.env && variable == f.env) return std::string(f.name);
  return std::nullopt;
}

std::string help_text() {
  std::string out =
      "Usage: kbgp [flags]\n"
      "Relays BGP sessions from devices to the backend over gRPC.\n\n"
      "Flags (-flag or --flag; value after '=' or a space; bools take only '='):\n";
  for (const auto& f : kFlags) {
    std::string line = "  --" + std::string(f.name) + " " + f.type_text;
    out += line + "\n        " + f.help;
    if (f.env) out += std::string(" ($") + f.env + ")";
    out += "\n";
  }
  out += "  -h, --help\n        Show this help\n";
  return out;
}

ParseOutcome parse_options(const std::vector<std::string>& args, const EnvLookup& env) {
  ParseOutcome out;
  Parser p;
  // Environment first, so flags override it.
  for (const auto& f : kFlags) {
    if (!f.env) continue;
    auto value = env(f.env);
    if (!value || value->empty()) continue;
    if (!p.apply(f, *value)) {
      out.message = p.error + " (from $" + f.env + ")";
      return out;
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      out.kind = ParseOutcome::Kind::Help;
      out.message = help_text();
      return out;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      out.message = "unexpected argument \"" + arg + "\" (see --help)";
      return out;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name = body;
    std::optional<std::string> value;
    auto eq = body.find('=');
    if (eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    const FlagSpec* f = find_flag(name);
    if (!f) {
      out.message = "unknown flag \"" + arg + "\" (see --help)";
      return out;
    }
    out.flags_given.push_back(name);
    if (!value) {
      if (f->kind == ValueKind::Bool) {
        value = "true";
      } else {
        if (i + 1 >= args.size()) {
          out.message = "flag --" + name + " needs a value";
          return out;
        }
        value = args[++i];
      }
    }
    if (!p.apply(*f, *value)) {
      out.message = p.error;
      return out;
    }
  }
  if (p.version) {
    out.kind = ParseOutcome::Kind::Version;
    return out;
  }
  Options& o = p.opts;
  if (o.listen.empty()) {
    o.listen.push_back(*Endpoint::parse("0.0.0.0:179"));
    o.listen.push_back(*Endpoint::parse("[::]:179"));
  }
  if (!p.target_given) o.target = *region_target(o.region);
  std::string host = o.target.substr(0, o.target.rfind(':'));
  std::string export_host = host;
  if (!o.region.empty() && (o.region == "fra1" || o.region == "FRA1"))
    export_host = "grpc.api.kentik.eu";
  else if (!p.target_given)
    export_host = "grpc.api.kentik.com";
  if (o.log_export_url.empty())
    o.log_export_url = "https://" + export_host + "/agents/v202204/logs";
  if (o.metrics_export_url.empty())
    o.metrics_export_url = "https://" + export_host + "/agents/v202204/metrics";
  if (o.listen.size() > 16) {
    out.message = "too many --listen addresses (at most 16)";
    return out;
  }
  if (o.email.empty()) {
    out.message = "missing --email (or $KENTIK_API_EMAIL): the Kentik API email is required";
    return out;
  }
  if (o.token.empty()) {
    out.message = "missing --token (or $KENTIK_API_TOKEN): the Kentik API token is required";
    return out;
  }
  // Export URLs: what the uplink can use, and never the token in clear
  // text to anything but a test backend.
  for (auto [flag, url] : {std::pair{"--log-export-url", &o.log_export_url},
                           std::pair{"--metrics-export-url", &o.metrics_export_url}}) {
    std::string error;
    auto parsed = uplink::parse_export_url(*url, &error);
    if (!parsed || url->size() > 511) {
      out.message = "invalid value \"" + *url + "\" for " + flag + ": " +
                    (parsed ? "at most 511 characters" : error);
      return out;
    }
    if (!parsed->tls && !o.insecure) {
      out.message = "invalid value \"" + *url + "\" for " + flag +
                    ": http:// would send the API token unencrypted; use https:// (http:// only "
                    "together with --insecure, for tests)";
      return out;
    }
  }
  // Web proxy variables: a value the uplink could not use is refused now,
  // not discovered later in a worker's log.
  {
    std::string error;
    if (!uplink::proxy_settings_from_env(env, &error)) {
      out.message = error + " (expected http://[user:password@]host:port, user and password "
                            "percent-encoded)";
      return out;
    }
  }
  if (o.email.size() > 255 || o.token.size() > 511 || o.target.size() > 255 ||
      o.tls_ca_file.size() > 255 || o.tls_server_name.size() > 255) {
    out.message = "--email, --target, --tls-ca-file, --tls-server-name (255) or --token (511) too long";
    return out;
  }
  out.kind = ParseOutcome::Kind::Run;
  out.options = o;
  return out;
}

}  // namespace kbgp
