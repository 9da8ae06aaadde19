// GET /metrics: the Prometheus text exposition format (version 0.0.4),
// rendered from a ControlRegion and a "now" without any I/O. Every family has
// HELP and TYPE lines; names start with kbgp_, counters end in _total.
#pragma once

#include <string>

#include "admin/snapshot.h"
#include "common/layout.h"

namespace kbgp::admin {

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string metrics_text(const shm::ControlRegion& region, const Now& now);

// Escapes a label value (backslash, double quote, newline).
std::string escape_label(std::string_view value);

}  // namespace kbgp::admin
