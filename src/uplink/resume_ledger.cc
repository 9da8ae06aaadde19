#include "uplink/resume_ledger.h"

namespace kbgp::uplink {

std::optional<uint64_t> ResumeLedger::end_of(uint64_t n) const {
  if (n == 0) return 0;
  const shm::RequestEnd& e = record_->requests[n % shm::kRequestWindow];
  if (e.number.load(std::memory_order_acquire) != n) return std::nullopt;
  uint64_t end = e.end.load(std::memory_order_relaxed);
  // The number is stored last: a changed number means a torn read.
  if (e.number.load(std::memory_order_acquire) != n) return std::nullopt;
  return end;
}

void ResumeLedger::record_request(uint64_t n, uint64_t end) {
  shm::RequestEnd& e = record_->requests[n % shm::kRequestWindow];
  e.number.store(0, std::memory_order_release);  // invalid while it changes
  e.end.store(end, std::memory_order_release);
  e.number.store(n, std::memory_order_release);
}

uint64_t ResumeLedger::kept_from(uint64_t count, uint64_t read_pos) const {
  uint64_t s = count;
  auto end = end_of(s);
  if (!end || *end < read_pos) return count + 1;  // not even the last one
  while (s > 0 && count - (s - 1) < shm::kRequestWindow) {
    auto prev = end_of(s - 1);
    if (!prev || *prev < read_pos || *prev > *end) break;
    end = prev;
    --s;
  }
  return s;
}

void ResumeLedger::begin_response(uint64_t n, uint64_t start) {
  uint32_t current = record_->down_current.load(std::memory_order_relaxed) & 1;
  record_->down_start[current ^ 1] = shm::DownStart{n, start};
  record_->down_current.store(current ^ 1, std::memory_order_release);
}

uint64_t ResumeLedger::delivered_part(uint64_t n, uint64_t write_pos) const {
  uint32_t current = record_->down_current.load(std::memory_order_acquire) & 1;
  const shm::DownStart& d = record_->down_start[current];
  if (d.number != n || d.start > write_pos) return 0;
  return write_pos - d.start;
}

}  // namespace kbgp::uplink
