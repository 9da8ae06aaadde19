#include "common/timeutil.h"

#include <cstdio>
#include <ctime>

namespace kbgp {

namespace {
int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

int64_t realtime_ns() { return clock_ns(CLOCK_REALTIME); }
int64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }

std::string format_time_rfc3339(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<long long>(ns % 1000000000));
  return buf;
}

std::string format_time_human(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%02lld", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<long long>((ns % 1000000000) / 10000000));
  return buf;
}

}  // namespace kbgp
