#include "supervisor/deny_view.h"

#include <algorithm>
#include <atomic>
#include <vector>

namespace kbgp {

void publish_deny_list(const DenyList& list, shm::DenyListView* view, int64_t now_mono_ns,
                       int64_t now_real_ns) {
  std::vector<shm::DenyViewEntry> entries;
  entries.reserve(list.size());
  list.for_each([&](const Endpoint& device, int64_t until_mono_ns) {
    if (until_mono_ns <= now_mono_ns) return;  // expired, not yet swept
    entries.push_back({device, now_real_ns + (until_mono_ns - now_mono_ns)});
  });
  size_t shown = std::min<size_t>(entries.size(), shm::kDenyViewEntries);
  std::partial_sort(entries.begin(), entries.begin() + static_cast<ptrdiff_t>(shown),
                    entries.end(), [](const shm::DenyViewEntry& a, const shm::DenyViewEntry& b) {
                      return a.until_ns > b.until_ns;
                    });
  // Seqlock: odd while writing, so the admin retries instead of using a
  // torn copy. Only the supervisor writes, so a plain increment is enough.
  uint32_t seq = view->seq.load(std::memory_order_relaxed);
  if (seq & 1) ++seq;  // never left odd, but do not depend on it
  view->seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  std::copy_n(entries.begin(), shown, view->entries);
  view->count = static_cast<uint32_t>(shown);
  view->total = entries.size();
  view->seq.store(seq + 2, std::memory_order_release);
}

}  // namespace kbgp
