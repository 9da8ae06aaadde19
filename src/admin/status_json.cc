#include "admin/status_json.h"

#include <arpa/inet.h>

#include <cstdlib>

#include "common/bad_input.h"
#include "common/ipc.h"
#include "common/timeutil.h"
#include "common/uuid.h"

namespace kbgp::admin {

namespace {

// A JSON string even from bytes that are not UTF-8 (shared memory is written
// by other processes): bytes jansson refuses become '?'.
json_t* text(std::string_view s) {
  if (json_t* v = json_stringn(s.data(), s.size())) return v;
  std::string clean(s);
  for (char& c : clean)
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  return json_stringn(clean.data(), clean.size());
}

json_t* integer(uint64_t v) {
  // json_int_t is signed 64-bit; counters never get near 2^63.
  return json_integer(static_cast<json_int_t>(v > INT64_MAX ? INT64_MAX : v));
}

json_t* time_value(int64_t ns) { return json_string(time_text(ns).c_str()); }

// Milliseconds from `then` to `now` (both realtime); 0 when `then` never was.
int64_t ms_since(int64_t now_ns, int64_t then_ns) {
  if (then_ns <= 0 || now_ns <= then_ns) return 0;
  return (now_ns - then_ns) / 1'000'000;
}

const char* worker_state_name(uint32_t state) {
  switch (static_cast<shm::WorkerState>(state)) {
    case shm::WorkerState::Down: return "down";
    case shm::WorkerState::Starting: return "starting";
    case shm::WorkerState::Ready: return "ready";
  }
  return "unknown";
}

std::string router_id_text(uint32_t network_order) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &network_order, buf, sizeof buf);
  return buf;
}

void set(json_t* obj, const char* key, json_t* value) { json_object_set_new(obj, key, value); }

json_t* config_json(const shm::ConfigView& c) {
  json_t* obj = json_object();
  json_t* listeners = json_array();
  uint32_t count = c.listener_count < shm::kMaxListeners ? c.listener_count : shm::kMaxListeners;
  for (uint32_t i = 0; i < count; ++i)
    json_array_append_new(listeners, text(bounded_string(c.listeners[i], sizeof c.listeners[i])));
  set(obj, "Listeners", listeners);
  set(obj, "MD5Enabled", json_boolean(c.md5_enabled != 0));
  set(obj, "MD5Interface", text(bounded_string(c.md5_interface, sizeof c.md5_interface)));
  set(obj, "ProxyTarget", text(bounded_string(c.target, sizeof c.target)));
  set(obj, "APIEmail", text(bounded_string(c.api_email, sizeof c.api_email)));
  set(obj, "SiteID", integer(c.site_id));
  set(obj, "Multi", integer(c.multi));
  return obj;
}

json_t* workers_json(const shm::ControlRegion& region, const Now& now) {
  json_t* obj = json_object();
  for (uint32_t k = 0; k < shm::kWorkerCount; ++k) {
    const auto& w = region.workers[k];
    json_t* entry = json_object();
    set(entry, "PID", integer(w.pid.load(std::memory_order_relaxed)));
    set(entry, "State", json_string(worker_state_name(w.state.load(std::memory_order_relaxed))));
    set(entry, "Restarts", integer(w.restarts.load(std::memory_order_relaxed)));
    int64_t beat = w.heartbeat_mono_ns.load(std::memory_order_relaxed);
    set(entry, "MsSinceHeartbeat",
        beat > 0 ? json_integer(now.monotonic_ns > beat ? (now.monotonic_ns - beat) / 1'000'000 : 0)
                 : json_null());
    set(obj, ipc::worker_name(static_cast<shm::WorkerKind>(k)), entry);
  }
  return obj;
}

json_t* counters_json(const shm::GlobalCounters& c) {
  json_t* obj = json_object();
  auto put = [&](const char* key, const std::atomic<uint64_t>& v) {
    set(obj, key, integer(v.load(std::memory_order_relaxed)));
  };
  put("ConnectionsAccepted", c.connections_accepted);
  put("ConnectionsDenied", c.connections_denied);
  put("ConnectionsRejected", c.connections_rejected);
  put("SessionsClosed", c.sessions_closed);
  put("FramingErrors", c.framing_errors);
  put("GrpcConnectionsOpen", c.grpc_connections_open);
  put("GrpcReconnects", c.grpc_reconnects);
  put("DataStreamsOpen", c.data_streams_open);
  put("DataStreamsFailed", c.data_streams_failed);
  put("ControlRequests", c.control_requests);
  put("DevicesDenied", c.devices_denied);
  put("DenyListSize", c.deny_list_size);
  put("BytesUp", c.bytes_up);
  put("BytesDown", c.bytes_down);
  put("MessagesUp", c.messages_up);
  put("MessagesDown", c.messages_down);
  put("MD5SynsSeen", c.md5_syns_seen);
  put("MD5SynsDropped", c.md5_syns_dropped);
  put("MD5Lookups", c.md5_lookups);
  put("MD5LookupsLimited", c.md5_lookups_limited);
  put("MD5LookupsFailed", c.md5_lookups_failed);
  put("MD5KeysInstalled", c.md5_keys_installed);
  put("MD5KeysRemoved", c.md5_keys_removed);
  put("MD5KeyErrors", c.md5_key_errors);
  put("MD5Keys", c.md5_keys);
  put("KernelTCPMD5NotFound", c.kernel_md5_not_found);
  put("KernelTCPMD5Unexpected", c.kernel_md5_unexpected);
  put("KernelTCPMD5Failure", c.kernel_md5_failure);
  return obj;
}

// Bad input by kind (common/bad_input.h): {"bad_marker": 0, ...}.
json_t* bad_input_json(const std::atomic<uint64_t>* values, uint32_t count,
                       const char* (*name)(uint32_t)) {
  json_t* obj = json_object();
  for (uint32_t i = 0; i < count; ++i)
    set(obj, name(i), integer(values[i].load(std::memory_order_relaxed)));
  return obj;
}
const char* framing_name(uint32_t i) {
  return bad_input::framing_label(static_cast<bad_input::Framing>(i));
}
const char* backend_name(uint32_t i) {
  return bad_input::backend_label(static_cast<bad_input::Backend>(i));
}
const char* action_name(uint32_t i) {
  return bad_input::action_label(static_cast<bad_input::BackendAction>(i));
}

// Devices the supervisor closes connections from, latest deadline first (at
// most shm::kDenyViewEntries; Counters.DenyListSize has the whole count).
json_t* deny_list_json(const shm::ControlRegion& region, const Now& now) {
  json_t* list = json_array();
  auto deny = read_deny_list(region.deny_list);
  if (!deny) return list;
  for (const auto& e : deny->entries) {
    if (e.until_ns <= now.realtime_ns) continue;  // ran out; the next sweep drops it
    json_t* entry = json_object();
    set(entry, "Device", json_string(e.device.address_string().c_str()));
    set(entry, "Until", time_value(e.until_ns));
    set(entry, "RemainingMs", json_integer((e.until_ns - now.realtime_ns) / 1'000'000));
    json_array_append_new(list, entry);
  }
  return list;
}

// The per-session figures beyond the vendor's, shared by list and detail.
void session_extras(json_t* obj, const SessionSnapshot& s) {
  set(obj, "SessionID", json_string(uuid_to_string(s.session_id).c_str()));
  set(obj, "Local", json_string(s.local.to_string().c_str()));
  set(obj, "State", json_string(s.state == shm::SlotState::Active ? "active" : "closing"));
  set(obj, "DeviceASN", integer(s.peer_asn));
  set(obj, "RouterID", s.peer_router_id ? json_string(router_id_text(s.peer_router_id).c_str())
                                        : json_null());
  set(obj, "HoldTime", integer(s.hold_time));
  set(obj, "MessagesUp", integer(s.msgs_up));
  set(obj, "MessagesDown", integer(s.msgs_down));
  set(obj, "BytesUp", integer(s.bytes_up));
  set(obj, "BytesDown", integer(s.bytes_down));
  set(obj, "DataRequests", integer(s.data_requests));
  set(obj, "DataResponses", integer(s.data_responses));
  set(obj, "MD5", json_boolean(s.md5));
}

}  // namespace

std::string time_text(int64_t realtime_ns) {
  if (realtime_ns <= 0) return "0001-01-01T00:00:00Z";
  return format_time_rfc3339(realtime_ns);
}

std::string dump_json(const json_t* value, bool pretty) {
  size_t flags = JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
  char* out = json_dumps(value, flags);
  std::string s = out ? out : "null";
  std::free(out);
  if (pretty) s += '\n';
  return s;
}

Json error_json(std::string_view message) {
  Json obj(json_object());
  set(obj.get(), "error", text(message));
  return obj;
}

Json health_json(const HealthReport& report, const Now& now) {
  Json obj(json_object());
  set(obj.get(), "timestamp", time_value(now.realtime_ns));
  set(obj.get(), "status", json_string(report.status));
  json_t* checks = json_object();
  for (const auto& c : report.checks)
    set(checks, c.name.c_str(), text(c.ok ? std::string_view("ok") : std::string_view(c.detail)));
  set(obj.get(), "checks", checks);
  return obj;
}

Json status_json(const shm::ControlRegion& region, const Now& now) {
  const auto& cfg = region.config;
  const auto& cs = region.control;
  Json obj(json_object());
  json_t* root = obj.get();
  set(root, "InstanceID", text(bounded_string(cfg.instance_id, sizeof cfg.instance_id)));

  json_t* control = json_object();
  bool connected = cs.connected.load(std::memory_order_acquire) != 0;
  int64_t since = cs.since_ns.load(std::memory_order_relaxed);
  set(control, "Connected", json_boolean(connected));
  set(control, "Since", time_value(since));
  set(control, "DurationMs", json_integer(connected ? ms_since(now.realtime_ns, since) : 0));
  set(control, "MessagesRx", integer(cs.messages_rx.load(std::memory_order_relaxed)));
  set(root, "ControlStream", control);

  json_t* beats = json_object();
  int64_t last_tx = cs.last_tx_ns.load(std::memory_order_relaxed);
  int64_t last_rx = cs.last_rx_ns.load(std::memory_order_relaxed);
  int64_t rtt_us = cs.last_rtt_us.load(std::memory_order_relaxed);
  set(beats, "LastTx", time_value(last_tx));
  set(beats, "MsSinceLastTx", json_integer(ms_since(now.realtime_ns, last_tx)));
  set(beats, "LastTxRTTMs", json_integer(rtt_us > 0 ? rtt_us / 1000 : 0));
  set(beats, "LastRx", time_value(last_rx));
  set(beats, "MsSinceLastRx", json_integer(ms_since(now.realtime_ns, last_rx)));
  set(root, "Heartbeats", beats);

  auto sessions = read_sessions(region);
  size_t active = 0;
  for (const auto& s : sessions) active += s.state == shm::SlotState::Active;
  set(root, "ActiveSessions", integer(active));
  set(root, "Config", config_json(cfg));

  set(root, "Version", text(bounded_string(cfg.version, sizeof cfg.version)));
  set(root, "StartedAt", time_value(cfg.agent_start_ns));
  set(root, "UptimeMs", json_integer(ms_since(now.realtime_ns, cfg.agent_start_ns)));
  set(root, "Workers", workers_json(region, now));
  json_t* counters = counters_json(region.counters);
  set(counters, "FramingErrorsByReason",
      bad_input_json(region.bad_input.framing, bad_input::kFramingCount, framing_name));
  set(counters, "BackendErrors",
      bad_input_json(region.bad_input.backend, bad_input::kBackendCount, backend_name));
  set(counters, "BackendActions",
      bad_input_json(region.bad_input.actions, bad_input::kActionCount, action_name));
  set(root, "Counters", counters);
  set(root, "DenyList", deny_list_json(region, now));
  return obj;
}

Json sessions_json(const shm::ControlRegion& region, const Now& now) {
  auto sessions = read_sessions(region);
  Json obj(json_object());
  set(obj.get(), "NumSessions", integer(sessions.size()));
  json_t* list = json_array();
  for (const auto& s : sessions) {
    json_t* entry = json_object();
    set(entry, "Peer", json_string(s.device.to_string().c_str()));
    set(entry, "Time", time_value(s.accepted_ns));
    set(entry, "DurationMs", json_integer(ms_since(now.realtime_ns, s.accepted_ns)));
    set(entry, "Connected", json_boolean(s.data_connected));
    session_extras(entry, s);
    json_array_append_new(list, entry);
  }
  set(obj.get(), "Sessions", list);
  return obj;
}

Json session_detail_json(const shm::ControlRegion& region, const Endpoint& device,
                         const Now& now) {
  auto sessions = read_sessions(region);
  const SessionSnapshot* found = nullptr;
  for (const auto& s : sessions)
    if (s.device.same_address(device)) found = &s;  // oldest first: keeps the newest
  if (!found) return nullptr;
  const SessionSnapshot& s = *found;

  Json obj(json_object());
  json_t* root = obj.get();
  set(root, "Peer", json_string(s.device.to_string().c_str()));
  set(root, "ConnectedSince", time_value(s.accepted_ns));
  set(root, "ConnectedDurationMs", json_integer(ms_since(now.realtime_ns, s.accepted_ns)));
  set(root, "SessionID", json_string(uuid_to_string(s.session_id).c_str()));

  json_t* metadata = nullptr;
  std::string device_name;
  if (auto m = read_metadata(region.sessions[s.slot], s.generation)) {
    device_name = m->device_name;
    json_error_t err;
    metadata = m->json.empty() ? nullptr : json_loadb(m->json.data(), m->json.size(), 0, &err);
    if (metadata && !json_is_object(metadata)) {
      json_decref(metadata);
      metadata = nullptr;
    }
  }
  set(root, "ServerMetadata", metadata ? metadata : json_object());

  session_extras(root, s);
  set(root, "Connected", json_boolean(s.data_connected));
  set(root, "DataStreamSince", time_value(s.data_since_ns));
  set(root, "DeviceID", integer(s.device_id));
  set(root, "DeviceName", text(device_name));
  return obj;
}

}  // namespace kbgp::admin
