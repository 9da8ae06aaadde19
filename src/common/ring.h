// Producer and consumer views of a shared-memory byte ring (layout.h).
//
// Positions are 64-bit byte counts that never wrap. The producer publishes
// bytes by storing write_pos with release order after copying them; the
// consumer frees space by storing read_pos with release order after it no
// longer needs the bytes. Each side trusts nothing the other side wrote
// beyond clamping: a corrupted peer position cannot make us read or write
// outside the ring.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/layout.h"

namespace kbgp {

class RingProducer {
 public:
  RingProducer() = default;
  RingProducer(shm::RingHeader* header, uint8_t* data, size_t capacity)
      : header_(header), data_(data), capacity_(capacity) {}

  // Bytes that can be written now.
  size_t free_space() const;
  // Copies all of `bytes` if it fits, publishes them, returns true; else
  // writes nothing and returns false.
  bool write(std::span<const uint8_t> bytes);
  // Writes as much of `bytes` as fits; returns how many were written.
  size_t write_some(std::span<const uint8_t> bytes);
  // Zero-copy producing: up to two spans of free space at the write position.
  // Fill a prefix of them, then commit() that many bytes.
  struct Spans {
    std::span<uint8_t> first;
    std::span<uint8_t> second;
  };
  Spans writable() const;
  void commit(size_t n);
  // Staging without publishing (the listener reads device bytes straight
  // into the ring and publishes only whole messages): the free space that
  // starts `skip` bytes after the write position, and a copy of `n` bytes
  // written there but not yet committed, `offset` bytes after it.
  Spans writable_after(size_t skip) const;
  void peek_unpublished(size_t offset, uint8_t* out, size_t n) const;
  // The same `n` bytes in place when they do not wrap around the end of
  // the ring (no copy: the listener reads every message header this way),
  // else copied into `scratch` (at least `n` bytes).
  std::span<const uint8_t> view_unpublished(size_t offset, size_t n, uint8_t* scratch) const;
  // Gives the whole pages of the free space back to the system (madvise
  // MADV_REMOVE: on shared memory the same as punching a hole in the memfd),
  // except the `keep` bytes right after the write position (staged, not yet
  // published). Safe from the producer's thread at any time: only the
  // producer writes into free space and the consumer never reads it; a
  // released page comes back zeroed when next written. Without this an idle
  // session keeps every page its byte positions ever passed through, in
  // both processes that map it, until the session ends. Returns the bytes
  // released (0 for memory that is not page-aligned shared memory).
  size_t release_free_pages(size_t keep = 0);

  void close(shm::RingClose how);
  uint64_t write_pos() const;
  // The consumer's position (acquire), unclamped.
  uint64_t read_pos() const;

  // Wake-up coalescing (layout.h, RingHeader). The producer found no room
  // when the consumer's position was `seen_read_pos`: marks itself waiting
  // and returns true if space was freed meanwhile (look again: the consumer
  // may have missed the flag); false = sleep, the consumer will wake us.
  bool wait_for_space(uint64_t seen_read_pos);
  // After publishing bytes: whether the consumer sleeps and must be woken
  // (clears its flag: one wake-up per sleep).
  bool consumer_wants_wake();

 private:
  shm::RingHeader* header_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
};

class RingConsumer {
 public:
  RingConsumer() = default;
  RingConsumer(shm::RingHeader* header, const uint8_t* data, size_t capacity)
      : header_(header), data_(data), capacity_(capacity) {}

  // Bytes available to read now.
  size_t available() const;
  // Up to two spans of readable bytes starting at the read position.
  struct Spans {
    std::span<const uint8_t> first;
    std::span<const uint8_t> second;
    size_t size() const { return first.size() + second.size(); }
  };
  Spans readable() const;
  // Copies `n` bytes at `offset` past the read position into `out` (n must be
  // <= available() - offset).
  void peek(size_t offset, uint8_t* out, size_t n) const;
  // Frees n bytes (n <= available()).
  void consume(size_t n);
  // The producer's position (acquire): read_pos() + available(), unclamped.
  uint64_t write_pos() const;
  // The producer's close state; meaningful once available() is 0 after it.
  shm::RingClose closed() const;
  uint64_t read_pos() const;

  // Wake-up coalescing, the consumer's half: found nothing (more) to take
  // when the producer's position was `seen_write_pos`: marks itself waiting
  // and returns true if bytes arrived meanwhile (look again); false = sleep.
  bool wait_for_bytes(uint64_t seen_write_pos);
  // After freeing space: whether the producer sleeps and must be woken.
  bool producer_wants_wake();

 private:
  shm::RingHeader* header_ = nullptr;
  const uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
};

// Convenience: the rings of a mapped session region.
inline RingProducer up_producer(shm::SessionRegion* r) {
  return RingProducer(&r->up, r->up_data, shm::kRingCapacity);
}
inline RingConsumer up_consumer(shm::SessionRegion* r) {
  return RingConsumer(&r->up, r->up_data, shm::kRingCapacity);
}
inline RingProducer down_producer(shm::SessionRegion* r) {
  return RingProducer(&r->down, r->down_data, shm::kRingCapacity);
}
inline RingConsumer down_consumer(shm::SessionRegion* r) {
  return RingConsumer(&r->down, r->down_data, shm::kRingCapacity);
}

}  // namespace kbgp
