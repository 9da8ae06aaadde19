// Restarts without loss: the x-kbgp-resume decisions both sides take when a
// Data stream is resumed, the uplink's ledger in the session region, and the
// supervisor's restart policy.
#include <catch2/catch.hpp>

#include <memory>

#include "common/layout.h"
#include "common/resume_protocol.h"
#include "supervisor/restart_policy.h"
#include "uplink/resume_ledger.h"

namespace resume = kbgp::resume;
namespace shm = kbgp::shm;
using kbgp::RestartPolicy;
using kbgp::uplink::ResumeLedger;

TEST_CASE("acknowledgements carry a decimal count") {
  CHECK(resume::decode_ack(resume::encode_ack(0)) == 0u);
  CHECK(resume::decode_ack(resume::encode_ack(18446744073709551615ull)) ==
        18446744073709551615ull);
  CHECK_FALSE(resume::decode_ack(""));
  CHECK_FALSE(resume::decode_ack("12a"));
  CHECK_FALSE(resume::decode_ack("-1"));
  CHECK_FALSE(resume::decode_ack("18446744073709551616"));
  CHECK(resume::requested("1"));
  CHECK_FALSE(resume::requested("0"));
  CHECK_FALSE(resume::requested(std::nullopt));
}

TEST_CASE("without the extension, counters must agree exactly") {
  CHECK_FALSE(resume::agent_decides(false, 5, 7, 5, 7, 0).kill);
  CHECK(resume::agent_decides(false, 5, 7, 4, 7, 0).kill);
  CHECK(resume::agent_decides(false, 5, 7, 5, 8, 0).kill);
  CHECK_FALSE(resume::backend_decides(false, 5, 7, 5, 7, 0).kill);
  CHECK(resume::backend_decides(false, 5, 7, 6, 7, 0).kill);
  CHECK(resume::backend_decides(false, 5, 7, 5, 6, 0).kill);
}

TEST_CASE("the agent resends what the backend missed, if it still has it") {
  // We sent 10; the backend got 7; we can resend from 5 on.
  auto d = resume::agent_decides(true, 10, 3, 7, 3, 5);
  CHECK_FALSE(d.kill);
  CHECK(d.resend_from == 8);
  CHECK(d.resend_to == 10);
  // The backend got 4 but we only have 6..10.
  CHECK(resume::agent_decides(true, 10, 3, 4, 3, 5).kill);
  // The backend claims more than we sent.
  CHECK(resume::agent_decides(true, 10, 3, 11, 3, 5).kill);
  // The backend sent more than we got: it resends, we just read.
  d = resume::agent_decides(true, 10, 3, 10, 9, 5);
  CHECK_FALSE(d.kill);
  CHECK(d.resend_from == 0);
  // We got more than the backend sent: impossible.
  CHECK(resume::agent_decides(true, 10, 3, 10, 2, 5).kill);
}

TEST_CASE("the backend resends what the agent missed, if it still has it") {
  // We (backend) got 4 requests and sent 9 responses; the agent got 6.
  auto d = resume::backend_decides(true, 4, 9, 6, 6, 5);
  CHECK_FALSE(d.kill);
  CHECK(d.resend_from == 7);
  CHECK(d.resend_to == 9);
  CHECK(resume::backend_decides(true, 4, 9, 6, 4, 5).kill);   // responses 5.. are gone
  CHECK(resume::backend_decides(true, 4, 9, 3, 9, 5).kill);   // agent sent fewer than we got
  CHECK(resume::backend_decides(true, 4, 9, 6, 10, 5).kill);  // agent got more than we sent
  CHECK_FALSE(resume::backend_decides(true, 4, 9, 8, 9, 9).kill);  // agent resends 5..8
}

TEST_CASE("the ledger remembers where each of the last DataRequests ends") {
  auto record = std::make_unique<shm::UplinkRecord>();
  ResumeLedger ledger(record.get());
  CHECK(ledger.end_of(0) == 0u);
  CHECK_FALSE(ledger.end_of(1));
  uint64_t end = 0;
  for (uint64_t n = 1; n <= 100; ++n) {
    end += n % 3 == 0 ? 0 : 100;  // every third one carried only an action
    ledger.record_request(n, end);
  }
  CHECK(ledger.end_of(100) == end);
  CHECK(ledger.end_of(37).has_value());  // 100 - 64 + 1 = 37 is the oldest kept
  CHECK_FALSE(ledger.end_of(36));
  // Everything after 36 can be rebuilt while the ring still has its bytes.
  uint64_t end36 = *ledger.end_of(37) - (37 % 3 == 0 ? 0 : 100);
  CHECK(ledger.kept_from(100, 0) == 37);
  CHECK(ledger.kept_from(100, *ledger.end_of(90)) <= 90);
  CHECK(ledger.kept_from(100, *ledger.end_of(90)) >= 89);  // 89 may end where 90 does
  CHECK(ledger.kept_from(100, end + 1) == 101);            // nothing left
  (void)end36;
}

TEST_CASE("the ledger knows how much of a DataResponse is in the down ring already") {
  auto record = std::make_unique<shm::UplinkRecord>();
  ResumeLedger ledger(record.get());
  CHECK(ledger.delivered_part(1, 0) == 0);
  ledger.begin_response(1, 0);
  CHECK(ledger.delivered_part(1, 700) == 700);
  ledger.begin_response(2, 1000);
  CHECK(ledger.delivered_part(2, 1500) == 500);
  CHECK(ledger.delivered_part(3, 1500) == 0);  // 3 was never begun
  CHECK(ledger.delivered_part(2, 900) == 0);   // a record that cannot be right
}

TEST_CASE("restart backoff: quick after a healthy run, doubling in a loop, then giving up") {
  RestartPolicy p;
  constexpr int64_t s = 1'000'000'000;
  int64_t t = 100 * s;
  // Healthy runs of 6 s: always the minimum delay.
  for (int i = 0; i < 5; ++i) {
    auto v = p.on_death(t - 6 * s, t);
    CHECK_FALSE(v.give_up);
    CHECK(v.delay_ns == RestartPolicy::kMinBackoffNs);
    t += 7 * s;
  }
  t += 120 * s;  // the window forgets those
  // Dying at once: 250 ms, 500 ms, 1 s, 2 s, 4 s, 5 s, ... then give up.
  int64_t expect = RestartPolicy::kMinBackoffNs;
  int restarts = 0;
  int64_t started = t - 60 * s;  // the first death ends a long, healthy run
  for (;;) {
    auto v = p.on_death(started, t);
    if (v.give_up) {
      CHECK(v.recent == RestartPolicy::kCrashLoopRestarts);
      break;
    }
    ++restarts;
    CHECK(v.delay_ns == expect);
    expect = std::min(expect * 2, RestartPolicy::kMaxBackoffNs);
    started = t + v.delay_ns;  // restarted, then dies 10 ms later
    t = started + 10'000'000;
  }
  CHECK(restarts == static_cast<int>(RestartPolicy::kCrashLoopRestarts));
}

TEST_CASE("ten kills spread over more than a minute are not a crash loop") {
  RestartPolicy p;
  constexpr int64_t s = 1'000'000'000;
  int64_t t = 1000 * s;
  for (int i = 0; i < 40; ++i) {
    auto v = p.on_death(t - 6 * s, t);
    REQUIRE_FALSE(v.give_up);
    t += 6'500'000'000;  // a kill every 6.5 s: at most 10 in any 60 s
  }
}
