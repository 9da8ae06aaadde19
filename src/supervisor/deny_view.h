// Mirrors the supervisor's deny-list into the ControlRegion for the admin
// (shm::DenyListView): a bounded, sorted copy written under its seqlock.
#pragma once

#include <cstdint>

#include "common/layout.h"
#include "supervisor/deny_list.h"

namespace kbgp {

// Rewrites `view` from `list`: at most kDenyViewEntries entries, the latest
// deadlines first, each as realtime (`now_real_ns` + time left).
void publish_deny_list(const DenyList& list, shm::DenyListView* view, int64_t now_mono_ns,
                       int64_t now_real_ns);

}  // namespace kbgp
