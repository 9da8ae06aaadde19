// The JSON documents of the admin API, rendered from a ControlRegion and a
// "now" without any I/O (so tests can build a region and check the shapes).
// Field names and shapes follow the vendor's documentation of the status
// API exactly; keys beyond the vendor's are additions, never renames.
#pragma once

#include <jansson.h>

#include <memory>
#include <string>
#include <string_view>

#include "admin/health.h"
#include "admin/snapshot.h"
#include "common/endpoint.h"
#include "common/layout.h"

namespace kbgp::admin {

struct JsonDeleter {
  void operator()(json_t* value) const { json_decref(value); }
};
using Json = std::unique_ptr<json_t, JsonDeleter>;

// Compact, or indented by two spaces for ?pretty; keys in insertion order.
std::string dump_json(const json_t* value, bool pretty);

// GET /hc: {"timestamp", "status"} (+ "checks").
Json health_json(const HealthReport& report, const Now& now);
// GET /admin/status.
Json status_json(const shm::ControlRegion& region, const Now& now);
// GET /admin/sessions.
Json sessions_json(const shm::ControlRegion& region, const Now& now);
// GET /admin/sessions/<device-ip>: the newest session from that address;
// nullptr when there is none.
Json session_detail_json(const shm::ControlRegion& region, const Endpoint& device,
                         const Now& now);
// {"error": message}
Json error_json(std::string_view message);

// RFC 3339 with nanoseconds; a zero time (never happened) renders as Go's
// zero time, "0001-01-01T00:00:00Z", like the vendor's agent.
std::string time_text(int64_t realtime_ns);

}  // namespace kbgp::admin
