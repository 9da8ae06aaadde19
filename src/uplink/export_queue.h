// The exporter's bounded queue of log lines waiting to be sent. It holds at
// most kMaxQueuedBytes; beyond that the oldest lines go first (counted).
// A batch is a prefix of the queue, removed only once the backend took it,
// so a failed POST loses nothing that still fits. No I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

namespace kbgp::uplink {

class LogQueue {
 public:
  static constexpr size_t kMaxQueuedBytes = 4 * 1024 * 1024;
  static constexpr size_t kMaxBatchBytes = 1024 * 1024;  // before compression
  static constexpr size_t kMaxBatchLines = 5000;

  explicit LogQueue(size_t max_bytes = kMaxQueuedBytes) : max_bytes_(max_bytes) {}

  // Adds one line (without newline); drops the oldest lines when full.
  void push(std::string line, int64_t at_mono_ns);

  struct Batch {
    std::string body;   // NDJSON: the lines, each ended by '\n'
    size_t lines = 0;
    bool empty() const { return lines == 0; }
  };
  // The oldest lines, up to the batch limits (at least one line if any).
  Batch peek_batch(size_t max_bytes = kMaxBatchBytes, size_t max_lines = kMaxBatchLines) const;
  // Removes the first `lines` lines (a batch that was delivered, or refused
  // for good).
  void pop(size_t lines);

  size_t lines() const { return lines_.size(); }
  size_t bytes() const { return bytes_; }
  uint64_t dropped() const { return dropped_; }
  // Monotonic time the oldest queued line was pushed (0 when empty).
  int64_t oldest_mono_ns() const { return lines_.empty() ? 0 : lines_.front().at_ns; }

 private:
  struct Entry {
    std::string text;
    int64_t at_ns;
  };
  size_t max_bytes_;
  std::deque<Entry> lines_;
  size_t bytes_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace kbgp::uplink
