#include "common/timeutil.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace kbgp {

namespace {
int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// UTC calendar fields without gmtime_r: glibc's gmtime_r runs tzset, which
// opens /etc/localtime, and the workers' seccomp policies forbid that.
struct Civil {
  int year;
  unsigned month, day, hour, minute, second;
};
Civil civil_from_ns(int64_t ns) {
  using namespace std::chrono;
  sys_seconds secs{seconds{ns / 1000000000}};
  auto days = floor<std::chrono::days>(secs);
  year_month_day ymd{days};
  hh_mm_ss<seconds> hms{secs - days};
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()), static_cast<unsigned>(hms.hours().count()),
          static_cast<unsigned>(hms.minutes().count()),
          static_cast<unsigned>(hms.seconds().count())};
}
}  // namespace

int64_t realtime_ns() { return clock_ns(CLOCK_REALTIME); }
int64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }

std::string format_time_rfc3339(int64_t ns) {
  Civil t = civil_from_ns(ns);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u.%09lldZ", t.year, t.month, t.day,
                t.hour, t.minute, t.second,
                static_cast<long long>(ns % 1000000000));
  return buf;
}

std::string format_time_human(int64_t ns) {
  Civil t = civil_from_ns(ns);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02u:%02u:%02u.%02lld", t.year, t.month, t.day,
                t.hour, t.minute, t.second,
                static_cast<long long>((ns % 1000000000) / 10000000));
  return buf;
}

}  // namespace kbgp
