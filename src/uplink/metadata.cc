#include "uplink/metadata.h"

#include <jansson.h>

#include <algorithm>
#include <map>
#include <memory>
#include <span>

namespace kbgp::uplink {

namespace {

constexpr std::string_view kTokenKeys[] = {"x-ch-auth-token", "x-ch-auth-api-token"};

// Keys the agent owns on the Data call; a Control answer may not override them.
constexpr std::string_view kOwnKeys[] = {
    "x-ch-auth-email", "x-ch-auth-token", "x-ch-auth-api-token", "sid",        "version",
    "instance",        "proto",           "device-ip",           "device-port", "proxy-ip",
    "proxy-port",      "session-id",      "counter-up",          "counter-down"};

// Transport headers gRPC sets itself.
constexpr std::string_view kReservedKeys[] = {"content-type", "te", "user-agent", "host",
                                              "authorization", "grpc-timeout"};

bool contains(std::span<const std::string_view> list, std::string_view key) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

bool is_token_key(std::string_view key) { return contains(kTokenKeys, key); }

struct JsonDeleter {
  void operator()(json_t* j) const { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

std::string dump(json_t* obj) {
  char* text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  std::string out = text ? text : "{}";
  free(text);
  return out;
}

// Any JSON value (a string too), compact, as dump() writes it inside an object.
std::string dump_any(json_t* value) {
  char* text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  std::string out = text ? text : "";
  free(text);
  return out;
}

// key -> [values], values in arrival order.
std::map<std::string, std::vector<std::string>> group(const Metadata& md) {
  std::map<std::string, std::vector<std::string>> grouped;
  for (const auto& [k, v] : md) grouped[k].push_back(v);
  return grouped;
}

bool is_binary_key(std::string_view key) {
  return key.size() > 4 && key.substr(key.size() - 4) == "-bin";
}

// Binary ("-bin") values are shown base64-encoded, as they travel on the wire.
std::string base64(std::string_view in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(n >> shift) & 63];
  }
  if (i < in.size()) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

JsonPtr string_array(std::string_view key, const std::vector<std::string>& values) {
  JsonPtr array(json_array());
  for (const auto& v : values) {
    std::string text = is_binary_key(key) ? base64(v) : v;
    json_t* s = json_stringn(text.data(), text.size());
    // jansson refuses invalid UTF-8; such a value is shown encoded instead.
    if (!s) s = json_string(base64(text).c_str());
    json_array_append_new(array.get(), s);
  }
  return array;
}

}  // namespace

Metadata common_metadata(const AgentIdentity& agent) {
  return {
      {"x-ch-auth-email", agent.email},
      {"x-ch-auth-token", agent.token},
      {"x-ch-auth-api-token", agent.token},
      {"sid", std::to_string(agent.site_id)},
      {"version", agent.version},
      {"instance", agent.instance},
  };
}

bool valid_metadata_key(std::string_view key) {
  if (key.empty() || key.size() > 256) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return key.substr(0, 5) != "grpc-";
}

bool valid_metadata_value(std::string_view key, std::string_view value) {
  if (value.size() > 4096) return false;
  if (is_binary_key(key)) return true;  // any bytes
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}

Metadata data_metadata(const AgentIdentity& agent, const DataCallInfo& call,
                       std::vector<std::string>* skipped) {
  Metadata md = common_metadata(agent);
  Endpoint device = call.device.unmapped();
  Endpoint local = call.local.unmapped();
  md.emplace_back("proto", call.proto);
  md.emplace_back("device-ip", device.address_string());
  md.emplace_back("device-port", std::to_string(device.port));
  md.emplace_back("proxy-ip", local.address_string());
  md.emplace_back("proxy-port", std::to_string(local.port));
  md.emplace_back("session-id", call.session_id);
  md.emplace_back("counter-up", std::to_string(call.counter_up));
  md.emplace_back("counter-down", std::to_string(call.counter_down));
  if (call.control_metadata) {
    for (const auto& kv : *call.control_metadata) {
      if (!valid_metadata_key(kv.key) || contains(kOwnKeys, kv.key) ||
          contains(kReservedKeys, kv.key)) {
        if (skipped) skipped->push_back(kv.key);
        continue;
      }
      for (const auto& value : kv.values) {
        if (valid_metadata_value(kv.key, value))
          md.emplace_back(kv.key, value);
        else if (skipped)
          skipped->push_back(kv.key);
      }
    }
  }
  return md;
}

std::string redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  size_t pos = 0;
  while ((pos = text.find(secret, pos)) != std::string::npos) {
    text.replace(pos, secret.size(), kRedacted);
    pos += std::string_view(kRedacted).size();
  }
  return text;
}

std::string redacted_metadata_json(const Metadata& md, const std::string& secret) {
  JsonPtr obj(json_object());
  for (auto& [key, values] : group(md)) {
    for (auto& v : values) v = is_token_key(key) ? std::string(kRedacted) : redact(v, secret);
    std::string k = redact(key, secret);
    json_object_set_new(obj.get(), k.c_str(), string_array(key, values).release());
  }
  return dump(obj.get());
}

std::string server_metadata_json(const Metadata& md, size_t max_len) {
  // Keys in sorted order (the order the dump writes them), each kept only
  // if the object still fits. The compact dump is "{" entries joined by ","
  // "}", an entry "key":[values], so its length is summed per entry instead
  // of dumping the growing object once per key (quadratic in the number of
  // keys a backend sends).
  JsonPtr obj(json_object());
  size_t length = 2;  // {}
  for (const auto& [key, values] : group(md)) {
    // jansson takes keys as C strings: one with a NUL inside would be cut
    // and collide with another (gRPC does not pass such keys; skipped).
    if (key.find('\0') != std::string::npos) continue;
    JsonPtr name(json_string(key.c_str()));
    if (!name) continue;  // not UTF-8: jansson refuses it as a key too
    JsonPtr array = string_array(key, values);
    size_t entry = dump_any(name.get()).size() + 1 + dump_any(array.get()).size();
    size_t with = length + entry + (json_object_size(obj.get()) ? 1 : 0);
    if (with > max_len) continue;
    json_object_set_new(obj.get(), key.c_str(), array.release());
    length = with;
  }
  std::string out = dump(obj.get());
  return out.size() <= max_len ? out : std::string();
}

std::optional<std::string> metadata_value(const Metadata& md, std::string_view key) {
  for (const auto& [k, v] : md)
    if (k == key) return v;
  return std::nullopt;
}

std::optional<uint64_t> parse_counter(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace kbgp::uplink
