#include "common/ring.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>

namespace kbgp {

namespace {
// Bytes between read and write, clamped so a corrupt position from the other
// process can never make us exceed the ring.
size_t used_bytes(uint64_t write_pos, uint64_t read_pos, size_t capacity) {
  if (write_pos < read_pos) return 0;
  return static_cast<size_t>(std::min<uint64_t>(write_pos - read_pos, capacity));
}

// Where position `pos` lies in the data. Real rings are a power of two
// (kRingCapacity), where a mask replaces a 64-bit division that showed in
// the listener's per-message profile; tests also use other sizes.
size_t ring_index(uint64_t pos, size_t capacity) {
  if ((capacity & (capacity - 1)) == 0) return static_cast<size_t>(pos & (capacity - 1));
  return static_cast<size_t>(pos % capacity);
}
}  // namespace

size_t RingProducer::free_space() const {
  uint64_t w = header_->write_pos.load(std::memory_order_relaxed);
  uint64_t r = header_->read_pos.load(std::memory_order_acquire);
  if (w < r) return 0;  // consumer corrupt: refuse to write
  return capacity_ - used_bytes(w, r, capacity_);
}

RingProducer::Spans RingProducer::writable() const {
  size_t space = free_space();
  uint64_t w = header_->write_pos.load(std::memory_order_relaxed);
  size_t offset = ring_index(w, capacity_);
  size_t first = std::min(space, capacity_ - offset);
  return {std::span<uint8_t>(data_ + offset, first),
          std::span<uint8_t>(data_, space - first)};
}

RingProducer::Spans RingProducer::writable_after(size_t skip) const {
  size_t space = free_space();
  if (skip >= space) return {};
  uint64_t w = header_->write_pos.load(std::memory_order_relaxed) + skip;
  size_t offset = ring_index(w, capacity_);
  size_t left = space - skip;
  size_t first = std::min(left, capacity_ - offset);
  return {std::span<uint8_t>(data_ + offset, first), std::span<uint8_t>(data_, left - first)};
}

void RingProducer::peek_unpublished(size_t offset, uint8_t* out, size_t n) const {
  uint64_t p = header_->write_pos.load(std::memory_order_relaxed) + offset;
  size_t start = ring_index(p, capacity_);
  size_t n1 = std::min(n, capacity_ - start);
  std::memcpy(out, data_ + start, n1);
  if (n > n1) std::memcpy(out + n1, data_, n - n1);
}

std::span<const uint8_t> RingProducer::view_unpublished(size_t offset, size_t n,
                                                        uint8_t* scratch) const {
  uint64_t p = header_->write_pos.load(std::memory_order_relaxed) + offset;
  size_t start = ring_index(p, capacity_);
  if (n <= capacity_ - start) return {data_ + start, n};
  peek_unpublished(offset, scratch, n);
  return {scratch, n};
}

size_t RingProducer::release_free_pages(size_t keep) {
  constexpr uint64_t kPage = 4096;
  if (reinterpret_cast<uintptr_t>(data_) % kPage != 0 || capacity_ % kPage != 0) return 0;
  size_t space = free_space();
  if (keep >= space) return 0;
  uint64_t start = header_->write_pos.load(std::memory_order_relaxed) + keep;
  uint64_t end = start + (space - keep);  // positions [start, end) are free
  uint64_t from = (start + kPage - 1) / kPage * kPage;
  uint64_t to = end / kPage * kPage;
  if (from >= to) return 0;
  // At most one wrap: the free space is shorter than the ring.
  size_t offset = ring_index(from, capacity_);
  size_t len = static_cast<size_t>(to - from);
  size_t first = std::min(len, capacity_ - offset);
  size_t released = 0;
  if (::madvise(data_ + offset, first, MADV_REMOVE) == 0) released += first;
  if (len > first && ::madvise(data_, len - first, MADV_REMOVE) == 0) released += len - first;
  return released;
}

void RingProducer::commit(size_t n) {
  uint64_t w = header_->write_pos.load(std::memory_order_relaxed);
  header_->write_pos.store(w + n, std::memory_order_release);
}

size_t RingProducer::write_some(std::span<const uint8_t> bytes) {
  Spans spans = writable();
  size_t n1 = std::min(bytes.size(), spans.first.size());
  std::memcpy(spans.first.data(), bytes.data(), n1);
  size_t n2 = std::min(bytes.size() - n1, spans.second.size());
  if (n2) std::memcpy(spans.second.data(), bytes.data() + n1, n2);
  if (n1 + n2) commit(n1 + n2);
  return n1 + n2;
}

bool RingProducer::write(std::span<const uint8_t> bytes) {
  if (bytes.size() > free_space()) return false;
  write_some(bytes);
  return true;
}

void RingProducer::close(shm::RingClose how) {
  header_->closed.store(static_cast<uint32_t>(how), std::memory_order_release);
}

uint64_t RingProducer::write_pos() const {
  return header_->write_pos.load(std::memory_order_relaxed);
}

uint64_t RingProducer::read_pos() const {
  return header_->read_pos.load(std::memory_order_acquire);
}

namespace {
// The two halves of a flag hand-shake (Dekker): one side stores its
// position then loads the flag, the other stores the flag then loads the
// position. The seq_cst fences keep each store ahead of the load that
// follows it, so at least one side sees the other's store: either the
// sleeper sees the new position or the mover sees the flag. No wake-up is
// lost.
bool set_waiting_and_recheck(std::atomic<uint32_t>& flag, const std::atomic<uint64_t>& pos,
                             uint64_t seen) {
  flag.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return pos.load(std::memory_order_acquire) != seen;
}
bool take_waiting(std::atomic<uint32_t>& flag) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A plain load first: the flag is usually clear, and an exchange would
  // pull the other side's cache line over every time.
  if (flag.load(std::memory_order_relaxed) == 0) return false;
  return flag.exchange(0, std::memory_order_acq_rel) != 0;
}
}  // namespace

bool RingProducer::wait_for_space(uint64_t seen_read_pos) {
  return set_waiting_and_recheck(header_->producer_waiting, header_->read_pos, seen_read_pos);
}

bool RingProducer::consumer_wants_wake() { return take_waiting(header_->consumer_waiting); }

bool RingConsumer::wait_for_bytes(uint64_t seen_write_pos) {
  return set_waiting_and_recheck(header_->consumer_waiting, header_->write_pos, seen_write_pos);
}

bool RingConsumer::producer_wants_wake() { return take_waiting(header_->producer_waiting); }

size_t RingConsumer::available() const {
  uint64_t w = header_->write_pos.load(std::memory_order_acquire);
  uint64_t r = header_->read_pos.load(std::memory_order_relaxed);
  return used_bytes(w, r, capacity_);
}

RingConsumer::Spans RingConsumer::readable() const {
  size_t avail = available();
  uint64_t r = header_->read_pos.load(std::memory_order_relaxed);
  size_t offset = ring_index(r, capacity_);
  size_t first = std::min(avail, capacity_ - offset);
  return {std::span<const uint8_t>(data_ + offset, first),
          std::span<const uint8_t>(data_, avail - first)};
}

void RingConsumer::peek(size_t offset, uint8_t* out, size_t n) const {
  uint64_t r = header_->read_pos.load(std::memory_order_relaxed) + offset;
  size_t start = ring_index(r, capacity_);
  size_t n1 = std::min(n, capacity_ - start);
  std::memcpy(out, data_ + start, n1);
  if (n > n1) std::memcpy(out + n1, data_, n - n1);
}

void RingConsumer::consume(size_t n) {
  uint64_t r = header_->read_pos.load(std::memory_order_relaxed);
  header_->read_pos.store(r + n, std::memory_order_release);
}

shm::RingClose RingConsumer::closed() const {
  uint32_t v = header_->closed.load(std::memory_order_acquire);
  if (v > static_cast<uint32_t>(shm::RingClose::Abort)) return shm::RingClose::Abort;
  return static_cast<shm::RingClose>(v);
}

uint64_t RingConsumer::write_pos() const {
  return header_->write_pos.load(std::memory_order_acquire);
}

uint64_t RingConsumer::read_pos() const {
  return header_->read_pos.load(std::memory_order_relaxed);
}

}  // namespace kbgp
