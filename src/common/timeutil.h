// Clocks and time formatting.
#pragma once

#include <cstdint>
#include <string>

namespace kbgp {

int64_t realtime_ns();
int64_t monotonic_ns();
// "2023-07-25T17:01:25.409183151Z" (nanoseconds, UTC), as the vendor's API.
std::string format_time_rfc3339(int64_t realtime_ns);
// "2023-07-25 17:01:49.87" (UTC, centiseconds), as the vendor's human logs.
std::string format_time_human(int64_t realtime_ns);

}  // namespace kbgp
