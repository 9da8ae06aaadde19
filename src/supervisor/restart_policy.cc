#include "supervisor/restart_policy.h"

#include <algorithm>

namespace kbgp {

RestartPolicy::Verdict RestartPolicy::on_death(int64_t started_ns, int64_t now_ns) {
  while (!restarts_.empty() && now_ns - restarts_.front() >= kCrashLoopWindowNs)
    restarts_.pop_front();
  Verdict v;
  if (restarts_.size() >= kCrashLoopRestarts) {
    v.give_up = true;
    v.recent = static_cast<uint32_t>(restarts_.size());
    return v;
  }
  if (started_ns != 0 && now_ns - started_ns >= kStableRunNs) backoff_ns_ = 0;
  backoff_ns_ = backoff_ns_ == 0 ? kMinBackoffNs : std::min(backoff_ns_ * 2, kMaxBackoffNs);
  restarts_.push_back(now_ns);
  v.delay_ns = backoff_ns_;
  v.recent = static_cast<uint32_t>(restarts_.size());
  return v;
}

}  // namespace kbgp
