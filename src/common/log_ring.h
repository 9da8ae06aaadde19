// The log ring: every kbgp process (supervisor and workers) appends its log
// lines, in their JSON form, to one shared-memory ring that the uplink
// drains for log export (docs/export.md). Lines still go to stderr (the
// journal) as before; the ring is an extra copy, and a lossy one.
//
// A memfd created by the supervisor (only when log export is on), mapped
// read-write by every process (fd 8 in the workers, ipc::kLogRingFd).
// Fixed-size records; writers never wait and never fail:
//
//   ticket = head.fetch_add(1)              (many producers, wait-free)
//   record = records[ticket % kLogRecords]
//   record.seq = 2*ticket + 1 (writing) ... copy ... record.seq = 2*ticket + 2
//
// The one reader (the uplink) keeps its position in `tail`. A record it
// finds with another seq was overwritten by a writer one lap ahead (the
// reader fell more than kLogRecords behind) or is still being written;
// overwritten records are counted as dropped: the oldest lines go first.
//
// Nothing in the ring is trusted: every process can write any bytes into
// any record. Writers compute indexes from their own ticket modulo the
// fixed count (always in bounds, whatever `head` says); the reader clamps
// lengths and treats each record's text as untrusted data (it is exported
// as a JSON string only after validation). The supervisor never reads it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kbgp::logring {

constexpr uint32_t kMagic = 0x4b424c52;  // "KBLR"
constexpr uint32_t kVersion = 1;
constexpr size_t kRecordBytes = 2048;
constexpr uint32_t kLogRecords = 1024;  // 2 MiB of lines
constexpr size_t kTextBytes = kRecordBytes - 24;

struct alignas(64) Record {
  std::atomic<uint64_t> seq;  // 2*ticket+1 while written, 2*ticket+2 when complete
  int64_t time_ns;            // realtime of the line
  uint32_t length;            // bytes of text used
  uint8_t level;              // log::Level
  uint8_t pad[3];
  char text[kTextBytes];      // one JSON object, no newline
};
static_assert(sizeof(Record) == kRecordBytes);

struct alignas(64) Header {
  uint32_t magic;
  uint32_t version;
  uint32_t record_bytes;
  uint32_t record_count;
  alignas(64) std::atomic<uint64_t> head;     // next ticket (writers)
  alignas(64) std::atomic<uint64_t> tail;     // next ticket to read (the uplink)
  std::atomic<uint64_t> dropped;              // lines the reader found overwritten
  std::atomic<uint64_t> truncated;            // lines too long for a record (writers)
};

struct Region {
  Header header;
  Record records[kLogRecords];
};

constexpr size_t kRegionBytes = sizeof(Region);

// Fills in a fresh (zeroed) region.
void init(Region* region);
// True if a mapping of `size` bytes holds a region of this layout.
bool valid(const Region* region, size_t size);

// Appends one line (a complete JSON object). A line longer than a record is
// replaced by a short JSON object that says so (and keeps the start of the
// message), so the reader never sees a cut-off object.
void append(Region* region, uint8_t level, int64_t time_ns, std::string_view json_line);

// One line taken out of the ring by the reader.
struct Line {
  uint64_t ticket = 0;
  int64_t time_ns = 0;
  uint8_t level = 0;
  std::string text;
};

// The reader's side. Not thread-safe; one reader per region.
class Reader {
 public:
  explicit Reader(Region* region) : region_(region) {}
  // Takes up to `max_lines` complete lines, oldest first. A record still
  // being written stops the read (it is retried next time) unless it has
  // been so for more than `stuck_ns` (its writer died): then it is skipped
  // and counted as dropped. Returns the number of lines appended to `out`.
  template <typename Sink>
  size_t drain(size_t max_lines, int64_t now_mono_ns, Sink&& sink, int64_t stuck_ns = 1'000'000'000);
  uint64_t dropped() const { return region_->header.dropped.load(std::memory_order_relaxed); }
  uint64_t truncated() const { return region_->header.truncated.load(std::memory_order_relaxed); }

 private:
  // 0: a line (filled in), 1: record skipped (overwritten), 2: stop (writer busy)
  int read_one(uint64_t ticket, Line* line);

  Region* region_;
  uint64_t busy_ticket_ = ~0ULL;
  int64_t busy_since_ns_ = 0;
};

template <typename Sink>
size_t Reader::drain(size_t max_lines, int64_t now, Sink&& sink, int64_t stuck_ns) {
  Header& h = region_->header;
  uint64_t head = h.head.load(std::memory_order_acquire);
  uint64_t tail = h.tail.load(std::memory_order_relaxed);
  if (tail > head) tail = head;  // a writer cannot make us read the future
  if (head - tail > kLogRecords) {
    h.dropped.fetch_add(head - tail - kLogRecords, std::memory_order_relaxed);
    tail = head - kLogRecords;
  }
  size_t taken = 0;
  while (tail < head && taken < max_lines) {
    Line line;
    int r = read_one(tail, &line);
    if (r == 2) {
      if (busy_ticket_ != tail) {
        busy_ticket_ = tail;
        busy_since_ns_ = now;
        break;
      }
      if (now - busy_since_ns_ < stuck_ns) break;
      h.dropped.fetch_add(1, std::memory_order_relaxed);  // its writer is gone
    } else if (r == 1) {
      h.dropped.fetch_add(1, std::memory_order_relaxed);
    } else {
      sink(std::move(line));
      ++taken;
    }
    ++tail;
  }
  h.tail.store(tail, std::memory_order_relaxed);
  return taken;
}

// The process-wide ring this process writes its log lines into (log.cc
// calls append_line); nullptr until attached.
Region* attached();
// Maps the memfd `fd` (read-write) and attaches it. False (nothing
// attached) when fd is not a ring of this layout.
bool attach_fd(int fd);
// Attaches a region this process mapped itself (the supervisor).
void attach(Region* region);

}  // namespace kbgp::logring
