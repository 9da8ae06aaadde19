#include <catch2/catch.hpp>

#include "uplink/coalescing.h"

using kbgp::uplink::Coalescer;

namespace {
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kT0 = 1'000 * kMs;  // any monotonic time
constexpr size_t kBig = Coalescer::kBusyBytes;
constexpr size_t kSmall = 200;
}  // namespace

TEST_CASE("light traffic is never held") {
  Coalescer c;
  // The first batch of a stream, then small batches at any pace: a lone
  // UPDATE, a KEEPALIVE, a burst of a few changes.
  CHECK(c.send_now(kSmall, false, kT0));
  c.sent(kSmall, kT0);
  for (int i = 1; i <= 100; ++i) {
    int64_t now = kT0 + i * 10'000;  // every 10 us
    REQUIRE(c.send_now(kSmall, false, now));
    c.sent(kSmall, now);
  }
  CHECK_FALSE(c.holding());
  // A big request long ago does not make a later small batch wait.
  c.sent(kBig, kT0);
  CHECK(c.send_now(kSmall, false, kT0 + Coalescer::kHoldNs));
}

TEST_CASE("under a flow a small batch waits, at most kHoldNs") {
  Coalescer c;
  c.sent(kBig, kT0);
  const int64_t first = kT0 + kMs;
  CHECK_FALSE(c.send_now(kSmall, false, first));
  REQUIRE(c.holding());
  CHECK(c.hold_until_ns() == first + Coalescer::kHoldNs);
  // Coming back early (another write completed, the heartbeat) does not
  // move the deadline.
  CHECK_FALSE(c.send_now(kSmall * 10, false, first + kMs));
  CHECK(c.hold_until_ns() == first + Coalescer::kHoldNs);
  CHECK_FALSE(c.send_now(kSmall * 10, false, first + Coalescer::kHoldNs - 1));
  CHECK(c.send_now(kSmall * 10, false, first + Coalescer::kHoldNs));
  c.sent(kSmall * 10, first + Coalescer::kHoldNs);
  CHECK_FALSE(c.holding());
  // What went out was small: the next batch goes at once.
  CHECK(c.send_now(kSmall, false, first + Coalescer::kHoldNs + 1));
}

TEST_CASE("a full batch or a closed ring goes at once, even while holding") {
  Coalescer c;
  c.sent(kBig, kT0);
  CHECK(c.send_now(Coalescer::kFullBytes, false, kT0 + 1));
  CHECK(c.send_now(kSmall, true, kT0 + 1));  // the device closed: nothing more comes
  CHECK_FALSE(c.send_now(kSmall, false, kT0 + 1));
  CHECK(c.send_now(Coalescer::kFullBytes, false, kT0 + 2));
  CHECK(c.send_now(kSmall, true, kT0 + 2));
}

TEST_CASE("a steady flow keeps coalescing: one request per hold") {
  Coalescer c;
  // A speaker writing 40 MB/s (a BIRD table dump on loopback), with the
  // policy asked every 0.5 ms (more often than the uplink asks while it
  // holds, which is only when its timer fires): without holding, a
  // request per look.
  const size_t per_look = 20'000;
  size_t pending = 0, requests = 0;
  c.sent(kBig, kT0);
  for (int i = 1; i <= 2000; ++i) {  // 1 s
    int64_t now = kT0 + i * kMs / 2;
    pending += per_look;
    if (c.send_now(pending, false, now)) {
      c.sent(pending, now);
      ++requests;
      pending = 0;
    }
  }
  // 40 MB in batches of at least ~128 KiB, or whatever 4 ms brought.
  CHECK(requests <= 2000 * per_look / Coalescer::kFullBytes + 1);
  CHECK(requests >= 1000 / 5);
}

TEST_CASE("a new stream forgets the hold") {
  Coalescer c;
  c.sent(kBig, kT0);
  CHECK_FALSE(c.send_now(kSmall, false, kT0 + 1));
  c.reset();
  CHECK_FALSE(c.holding());
  CHECK(c.send_now(kSmall, false, kT0 + 2));
}

TEST_CASE("holds are counted, across streams") {
  Coalescer c;
  c.sent(kBig, kT0);
  CHECK_FALSE(c.send_now(kSmall, false, kT0 + 1));
  CHECK_FALSE(c.send_now(kSmall, false, kT0 + 2));  // the same hold
  CHECK(c.holds() == 1);
  c.reset();
  c.sent(kBig, kT0 + 3);
  CHECK_FALSE(c.send_now(kSmall, false, kT0 + 4));
  CHECK(c.holds() == 2);
}
