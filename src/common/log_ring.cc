#include "common/log_ring.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>

namespace kbgp::logring {

namespace {
std::atomic<Region*> g_region{nullptr};

constexpr std::string_view kTooLong =
    R"({"level":"warn","message":"a log line too long for the export ring was left out","truncated":"true"})";
}  // namespace

void init(Region* region) {
  region->header.magic = kMagic;
  region->header.version = kVersion;
  region->header.record_bytes = kRecordBytes;
  region->header.record_count = kLogRecords;
  region->header.head.store(0, std::memory_order_relaxed);
  region->header.tail.store(0, std::memory_order_relaxed);
  region->header.dropped.store(0, std::memory_order_relaxed);
  region->header.truncated.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}

bool valid(const Region* region, size_t size) {
  return region && size >= kRegionBytes && region->header.magic == kMagic &&
         region->header.version == kVersion && region->header.record_bytes == kRecordBytes &&
         region->header.record_count == kLogRecords;
}

void append(Region* region, uint8_t level, int64_t time_ns, std::string_view line) {
  if (line.size() > kTextBytes) {
    region->header.truncated.fetch_add(1, std::memory_order_relaxed);
    line = kTooLong;
  }
  uint64_t ticket = region->header.head.fetch_add(1, std::memory_order_relaxed);
  Record& r = region->records[ticket % kLogRecords];
  r.seq.store(2 * ticket + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  r.time_ns = time_ns;
  r.level = level;
  r.length = static_cast<uint32_t>(line.size());
  std::memcpy(r.text, line.data(), line.size());
  r.seq.store(2 * ticket + 2, std::memory_order_release);
}

int Reader::read_one(uint64_t ticket, Line* line) {
  Record& r = region_->records[ticket % kLogRecords];
  uint64_t want = 2 * ticket + 2;
  uint64_t before = r.seq.load(std::memory_order_acquire);
  if (before > want) return 1;   // a writer one lap ahead took the record
  if (before != want) return 2;  // not written yet, or being written
  uint32_t length = r.length;
  if (length > kTextBytes) length = kTextBytes;  // written by anyone: clamp
  line->ticket = ticket;
  line->time_ns = r.time_ns;
  line->level = r.level;
  line->text.assign(r.text, length);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (r.seq.load(std::memory_order_relaxed) != before) return 1;  // overwritten while copied
  return 0;
}

Region* attached() { return g_region.load(std::memory_order_acquire); }

void attach(Region* region) { g_region.store(region, std::memory_order_release); }

bool attach_fd(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < kRegionBytes) return false;
  void* p = ::mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return false;
  auto* region = static_cast<Region*>(p);
  if (!valid(region, kRegionBytes)) {
    ::munmap(p, kRegionBytes);
    return false;
  }
  // Mapped for the life of the process: log lines may be written until the
  // very end (static destructors included).
  attach(region);
  return true;
}

}  // namespace kbgp::logring
