// RingProducer::release_free_pages: an idle ring gives its pages back
// without touching live or staged bytes.
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "common/layout.h"
#include "common/ring.h"
#include "common/shm.h"

using namespace kbgp;

namespace {

constexpr size_t kPage = 4096;

struct MappedSession {
  UniqueFd fd = create_memfd("test-ring-release", shm::kSessionRegionSize);
  SharedMapping map = SharedMapping::map(fd.get(), shm::kSessionRegionSize, true);
  shm::SessionRegion* region() { return map.as<shm::SessionRegion>(); }
};

// Pages of the down ring resident in the memfd (mincore).
size_t resident_pages(shm::SessionRegion* r) {
  std::vector<unsigned char> vec(shm::kRingCapacity / kPage);
  REQUIRE(::mincore(r->down_data, shm::kRingCapacity, vec.data()) == 0);
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

void pass_through(RingProducer& p, RingConsumer& c, size_t total, uint8_t seed) {
  auto bytes = pattern(total, seed);
  size_t done = 0;
  while (done < total) {
    size_t n = p.write_some({bytes.data() + done, std::min<size_t>(10000, total - done)});
    std::vector<uint8_t> got(n);
    c.peek(0, got.data(), n);
    REQUIRE(std::memcmp(got.data(), bytes.data() + done, n) == 0);
    c.consume(n);
    done += n;
  }
}

}  // namespace

TEST_CASE("a drained ring gives back every page but the one at the write position") {
  MappedSession s;
  REQUIRE(s.map);
  auto p = down_producer(s.region());
  auto c = down_consumer(s.region());
  pass_through(p, c, 3 * shm::kRingCapacity + 1234, 1);  // every page touched
  CHECK(resident_pages(s.region()) == shm::kRingCapacity / kPage);

  size_t released = p.release_free_pages();
  CHECK(released == shm::kRingCapacity - kPage);  // the write position is inside a page
  CHECK(resident_pages(s.region()) == 1);

  // The ring works on: released pages come back zeroed and are written again.
  pass_through(p, c, 2 * shm::kRingCapacity + 99, 5);
  CHECK(c.available() == 0);
}

TEST_CASE("live bytes and staged bytes keep their pages") {
  MappedSession s;
  auto p = down_producer(s.region());
  auto c = down_consumer(s.region());
  pass_through(p, c, shm::kRingCapacity, 3);  // all pages touched, write at a page start
  auto live = pattern(50000, 9);
  REQUIRE(p.write(live));
  c.consume(20000);
  // 30000 live bytes, then 5000 staged (written, not published).
  auto staged = pattern(5000, 11);
  auto spans = p.writable_after(0);
  REQUIRE(spans.first.size() >= staged.size());
  std::memcpy(spans.first.data(), staged.data(), staged.size());

  size_t released = p.release_free_pages(staged.size());
  CHECK(released > 0);
  std::vector<uint8_t> got(30000);
  c.peek(0, got.data(), got.size());
  CHECK(std::memcmp(got.data(), live.data() + 20000, got.size()) == 0);
  std::vector<uint8_t> back(staged.size());
  p.peek_unpublished(0, back.data(), back.size());
  CHECK(back == staged);
  // Free space: 128 KiB - 30000 live - 5000 staged; of it, whole pages only.
  size_t free_after_staged = shm::kRingCapacity - 30000 - 5000;
  CHECK(released <= free_after_staged);
  CHECK(released >= free_after_staged - 2 * kPage);
  CHECK(resident_pages(s.region()) == (shm::kRingCapacity - released) / kPage);
}

TEST_CASE("a full ring or memory that is not shared gives back nothing") {
  MappedSession s;
  auto p = down_producer(s.region());
  REQUIRE(p.write(pattern(shm::kRingCapacity, 4)));
  CHECK(p.release_free_pages() == 0);

  auto header = std::make_unique<shm::RingHeader>();
  std::vector<uint8_t> heap(1000);
  RingProducer unaligned(header.get(), heap.data() + 1, 512);
  CHECK(unaligned.release_free_pages() == 0);
}
