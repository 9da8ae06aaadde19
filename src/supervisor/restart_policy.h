// When the supervisor restarts a worker that died, and when it gives up.
//
//  * Backoff: 250 ms after the first death, doubling with each death that
//    follows a short run, up to 5 s; a worker that ran kStableRunNs before
//    dying was healthy, so its next restart is quick again. Sessions survive
//    a worker restart (docs/architecture.md), so a fast restart matters
//    more than a slow, careful one.
//  * Crash loop: a worker that already had kCrashLoopRestarts restarts in
//    the last kCrashLoopWindowNs is not restarted again: the agent exits with
//    kCrashLoopExitCode and says why, and systemd (Restart=on-failure) or
//    the operator takes over. With the backoff above a worker that dies at
//    once reaches the limit in about 35 s.
#pragma once

#include <cstdint>
#include <deque>

namespace kbgp {

class RestartPolicy {
 public:
  static constexpr int64_t kMinBackoffNs = 250'000'000;
  static constexpr int64_t kMaxBackoffNs = 5'000'000'000;
  static constexpr int64_t kStableRunNs = 5'000'000'000;
  static constexpr uint32_t kCrashLoopRestarts = 10;
  static constexpr int64_t kCrashLoopWindowNs = 60'000'000'000;
  static constexpr int kCrashLoopExitCode = 3;

  struct Verdict {
    bool give_up = false;
    int64_t delay_ns = 0;  // restart after this long
    uint32_t recent = 0;   // restarts within the window, this one included
  };
  // The worker started at `started_ns` (monotonic; 0 = it never started)
  // died at `now_ns`.
  Verdict on_death(int64_t started_ns, int64_t now_ns);

 private:
  int64_t backoff_ns_ = 0;
  std::deque<int64_t> restarts_;  // when each restart within the window was decided
};

}  // namespace kbgp
