// Limits the supervisor puts on what workers may ask of it: a message
// budget per second, a violation budget per run, a bounded deny list.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>

#include "supervisor/deny_list.h"
#include "supervisor/worker_process.h"

using namespace kbgp;

TEST_CASE("a worker's channel budget runs out after its messages per second") {
  ChannelBudget budget;
  uint32_t taken = 0;
  while (budget.take()) ++taken;
  // The message that spends the last token is still handled; then reading
  // pauses until the supervisor's next tick refills the budget.
  CHECK(taken + 1 == ChannelBudget::kMessagesPerSecond);
  CHECK_FALSE(budget.take());
  budget.reset();
  CHECK(budget.take());
}

TEST_CASE("a worker may break the protocol only a few times per run") {
  ChannelBudget budget;
  for (uint32_t i = 0; i < ChannelBudget::kViolationsPerRun; ++i) CHECK_FALSE(budget.violation());
  CHECK(budget.violation());
}

TEST_CASE("the deny list is bounded, and expired entries make room") {
  DenyList list;
  auto device = [](uint32_t n) {
    Endpoint e{};
    e.family = AF_INET;
    uint32_t be = htonl(0x0a000000u + n);
    std::memcpy(e.addr, &be, 4);
    return e;
  };
  const int64_t second = 1000000000;
  for (uint32_t i = 0; i < DenyList::kMaxEntries; ++i) REQUIRE(list.add(device(i), 10, 0));
  CHECK_FALSE(list.add(device(DenyList::kMaxEntries), 10, second));
  CHECK(list.add(device(0), 20, second));  // renewing an entry is always possible
  CHECK(list.add(device(DenyList::kMaxEntries), 10, 11 * second));  // the others expired
  CHECK(list.denied(device(DenyList::kMaxEntries), 11 * second));
}
