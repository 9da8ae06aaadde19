#include "uplink/export_queue.h"

namespace kbgp::uplink {

void LogQueue::push(std::string line, int64_t at_mono_ns) {
  bytes_ += line.size() + 1;
  lines_.push_back({std::move(line), at_mono_ns});
  while (bytes_ > max_bytes_ && !lines_.empty()) {
    bytes_ -= lines_.front().text.size() + 1;
    lines_.pop_front();
    ++dropped_;
  }
}

LogQueue::Batch LogQueue::peek_batch(size_t max_bytes, size_t max_lines) const {
  Batch b;
  for (const auto& e : lines_) {
    if (b.lines >= max_lines) break;
    if (b.lines > 0 && b.body.size() + e.text.size() + 1 > max_bytes) break;
    b.body += e.text;
    b.body += '\n';
    ++b.lines;
  }
  return b;
}

void LogQueue::pop(size_t lines) {
  while (lines-- > 0 && !lines_.empty()) {
    bytes_ -= lines_.front().text.size() + 1;
    lines_.pop_front();
  }
}

}  // namespace kbgp::uplink
