#include "admin/metrics_text.h"

#include <cinttypes>
#include <cstdio>

#include "admin/health.h"
#include "common/bad_input.h"
#include "common/ipc.h"

namespace kbgp::admin {

namespace {

class Writer {
 public:
  // Starts a family: HELP and TYPE lines.
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const char* name, const std::string& labels, uint64_t value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%" PRIu64, value);
    line(name, labels, buf);
  }
  // Seconds with microsecond precision (timestamps, round-trip times).
  void sample(const char* name, const std::string& labels, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", value);
    line(name, labels, buf);
  }
  // One family with one unlabelled sample.
  void single(const char* name, const char* type, const char* help, uint64_t value) {
    family(name, type, help);
    sample(name, "", value);
  }
  std::string take() { return std::move(out_); }

 private:
  void line(const char* name, const std::string& labels, const char* value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string out_;
};

std::string label(const char* key, std::string_view value) {
  return std::string(key) + "=\"" + escape_label(value) + "\"";
}

uint64_t get(const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); }

// A counter family with one sample per value 0..count-1 of a bad_input
// enum, labelled with that value's name.
template <typename Enum>
void per_value(Writer& w, const char* name, const char* help, const char* label_name,
               const std::atomic<uint64_t>* counts, uint32_t count, const char* (*name_of)(Enum)) {
  w.family(name, "counter", help);
  for (uint32_t i = 0; i < count; ++i)
    w.sample(name, label(label_name, name_of(static_cast<Enum>(i))), get(counts[i]));
}

}  // namespace

std::string escape_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string metrics_text(const shm::ControlRegion& region, const Now& now) {
  const auto& c = region.counters;
  const auto& cs = region.control;
  Writer w;

  w.family("kbgp_build_info", "gauge", "Version and instance of this agent (always 1).");
  w.sample("kbgp_build_info",
           label("version", bounded_string(region.config.version, sizeof region.config.version)) +
               "," +
               label("instance",
                     bounded_string(region.config.instance_id, sizeof region.config.instance_id)),
           uint64_t{1});
  w.family("kbgp_start_time_seconds", "gauge", "When the agent started, seconds since the epoch.");
  w.sample("kbgp_start_time_seconds", "",
           static_cast<double>(region.config.agent_start_ns) / 1e9);

  uint64_t active = 0;
  for (const auto& s : read_sessions(region)) active += s.state == shm::SlotState::Active;
  w.single("kbgp_sessions_active", "gauge", "BGP sessions currently relayed.", active);
  w.single("kbgp_sessions_accepted_total", "counter", "TCP connections accepted from devices.",
           get(c.connections_accepted));
  w.single("kbgp_sessions_denied_total", "counter",
           "Connections closed at once because the device is deny-listed.",
           get(c.connections_denied));
  w.single("kbgp_sessions_rejected_total", "counter",
           "Connections closed at once because no session slot was free.",
           get(c.connections_rejected));
  w.single("kbgp_sessions_closed_total", "counter", "Sessions that ended and were released.",
           get(c.sessions_closed));
  w.single("kbgp_framing_errors_total", "counter",
           "Sessions cut because a device sent malformed BGP framing.", get(c.framing_errors));
  per_value(w, "kbgp_framing_errors_by_reason_total",
            "Sessions cut for bad device input, by reason (incomplete_timeout: a message "
            "left unfinished longer than the device's hold time, at most 240 s).",
            "reason", region.bad_input.framing, bad_input::kFramingCount, bad_input::framing_label);
  per_value(w, "kbgp_backend_errors_total",
            "Messages from the backend that break the interface, by kind (the session or "
            "answer concerned is dropped, see docs/architecture.md \"Bad input\").",
            "kind", region.bad_input.backend, bad_input::kBackendCount, bad_input::backend_label);
  per_value(w, "kbgp_backend_actions_total",
            "KILL and RESTART actions received from the backend on Data streams.",
            "action", region.bad_input.actions, bad_input::kActionCount, bad_input::action_label);

  w.family("kbgp_bytes_total", "counter", "Bytes relayed, by direction (up: device to backend).");
  w.sample("kbgp_bytes_total", label("direction", "up"), get(c.bytes_up));
  w.sample("kbgp_bytes_total", label("direction", "down"), get(c.bytes_down));
  w.family("kbgp_messages_total", "counter",
           "Whole BGP messages relayed, by direction (up: device to backend).");
  w.sample("kbgp_messages_total", label("direction", "up"), get(c.messages_up));
  w.sample("kbgp_messages_total", label("direction", "down"), get(c.messages_down));

  w.single("kbgp_grpc_connections_open", "gauge", "gRPC connections to the backend.",
           get(c.grpc_connections_open));
  w.single("kbgp_grpc_reconnects_total", "counter", "gRPC reconnects to the backend.",
           get(c.grpc_reconnects));
  w.single("kbgp_data_streams_open", "gauge", "Data streams open, one per relayed session.",
           get(c.data_streams_open));
  w.single("kbgp_data_streams_failed_total", "counter", "Data streams that failed.",
           get(c.data_streams_failed));
  w.single("kbgp_control_requests_total", "counter", "ControlRequests sent for devices.",
           get(c.control_requests));
  w.single("kbgp_devices_denied_total", "counter", "BLOCK_IP answers from the backend.",
           get(c.devices_denied));
  w.single("kbgp_deny_list_size", "gauge", "Device addresses deny-listed now.",
           get(c.deny_list_size));

  w.single("kbgp_md5_syns_seen_total", "counter",
           "TCP-MD5 signed SYNs to our listeners seen by the SYN capture.",
           get(c.md5_syns_seen));
  w.single("kbgp_md5_syns_dropped_total", "counter",
           "Packets the SYN capture lost because its buffer was full.", get(c.md5_syns_dropped));
  w.single("kbgp_md5_lookups_total", "counter",
           "TCP-MD5 key lookups asked of the backend for devices seen in signed SYNs.",
           get(c.md5_lookups));
  w.single("kbgp_md5_lookups_limited_total", "counter",
           "Signed SYNs not looked up because of the per-device or overall rate limits.",
           get(c.md5_lookups_limited));
  w.single("kbgp_md5_lookups_failed_total", "counter",
           "TCP-MD5 key lookups that got no answer.", get(c.md5_lookups_failed));
  w.single("kbgp_md5_keys_installed_total", "counter",
           "TCP-MD5 keys installed on the listening sockets (new or changed).",
           get(c.md5_keys_installed));
  w.single("kbgp_md5_keys_removed_total", "counter",
           "TCP-MD5 keys removed (by the backend or expired).", get(c.md5_keys_removed));
  w.single("kbgp_md5_key_errors_total", "counter",
           "TCP-MD5 keys the kernel refused (see net.core.optmem_max).", get(c.md5_key_errors));
  w.single("kbgp_md5_keys", "gauge", "TCP-MD5 keys in force.", get(c.md5_keys));
  w.family("kbgp_kernel_tcp_md5_drops_total", "counter",
           "The kernel's TCP-MD5 drops on the whole host, read every second: not_found "
           "(TcpExtTCPMD5NotFound: a key is set, the segment is unsigned), unexpected "
           "(TcpExtTCPMD5Unexpected: signed, no key set), failure (TcpExtTCPMD5Failure: "
           "wrong signature).");
  w.sample("kbgp_kernel_tcp_md5_drops_total", label("reason", "not_found"),
           get(c.kernel_md5_not_found));
  w.sample("kbgp_kernel_tcp_md5_drops_total", label("reason", "unexpected"),
           get(c.kernel_md5_unexpected));
  w.sample("kbgp_kernel_tcp_md5_drops_total", label("reason", "failure"),
           get(c.kernel_md5_failure));

  w.single("kbgp_control_stream_connected", "gauge", "1 while the Control stream is up.",
           cs.connected.load(std::memory_order_relaxed) != 0 ? 1 : 0);
  w.single("kbgp_control_messages_received_total", "counter",
           "Messages received on the Control stream.", get(cs.messages_rx));
  w.family("kbgp_control_heartbeat_rtt_seconds", "gauge",
           "Round-trip time of the last Control stream keepalive.");
  w.sample("kbgp_control_heartbeat_rtt_seconds", "",
           static_cast<double>(cs.last_rtt_us.load(std::memory_order_relaxed)) / 1e6);
  w.family("kbgp_control_heartbeat_last_tx_timestamp_seconds", "gauge",
           "When the last Control stream keepalive was sent (0 = never).");
  w.sample("kbgp_control_heartbeat_last_tx_timestamp_seconds", "",
           static_cast<double>(cs.last_tx_ns.load(std::memory_order_relaxed)) / 1e9);
  w.family("kbgp_control_heartbeat_last_rx_timestamp_seconds", "gauge",
           "When the last Control stream keepalive was received (0 = never).");
  w.sample("kbgp_control_heartbeat_last_rx_timestamp_seconds", "",
           static_cast<double>(cs.last_rx_ns.load(std::memory_order_relaxed)) / 1e9);

  w.family("kbgp_worker_restarts_total", "counter", "Restarts of each worker process.");
  for (uint32_t k = 0; k < shm::kWorkerCount; ++k)
    w.sample("kbgp_worker_restarts_total",
             label("worker", ipc::worker_name(static_cast<shm::WorkerKind>(k))),
             get(region.workers[k].restarts));
  w.family("kbgp_worker_up", "gauge", "1 while the worker is ready and its heartbeat is fresh.");
  for (uint32_t k = 0; k < shm::kWorkerCount; ++k) {
    const auto& wk = region.workers[k];
    int64_t beat = wk.heartbeat_mono_ns.load(std::memory_order_relaxed);
    bool up = wk.state.load(std::memory_order_relaxed) ==
                  static_cast<uint32_t>(shm::WorkerState::Ready) &&
              beat > 0 && now.monotonic_ns - beat <= kHeartbeatMaxAge;
    w.sample("kbgp_worker_up", label("worker", ipc::worker_name(static_cast<shm::WorkerKind>(k))),
             uint64_t{up ? 1u : 0u});
  }
  return w.take();
}

}  // namespace kbgp::admin
