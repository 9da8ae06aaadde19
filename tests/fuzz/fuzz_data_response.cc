// libFuzzer target: DataResponses from the backend (any action value, any
// data entries) through the uplink's real decisions (uplink/data_decisions.h,
// as session.cc applies them) into a real down ring, which a simulated
// listener drains at its own pace. Checks: the device gets exactly the
// relayed bytes, in order, minus the part of a resent response that was
// delivered before; KILL and acknowledgements relay nothing; every copy
// completes once the listener makes room.
//
// Input: a flags byte (bit 0: the resume extension was negotiated), a 16-bit
// ring capacity (1..4096 used), a 16-bit count of bytes of the first
// response already delivered, then records of a drain byte (how much the
// listener takes per turn, 0 = nothing until the ring is full), a 16-bit
// length and a serialized DataResponse.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/layout.h"
#include "common/resume_protocol.h"
#include "common/ring.h"
#include "fuzz_input.h"
#include "kentik/ktbgp/v202203beta2/proxy.pb.h"
#include "uplink/data_decisions.h"

using namespace kbgp;
using namespace kbgp::uplink;
namespace pb = kentik::ktbgp::v202203beta2;

namespace {

// The listener's side: takes up to `limit` bytes (all when 0).
void drain(RingConsumer& consumer, size_t limit, std::string& device) {
  auto spans = consumer.readable();
  size_t n = limit == 0 ? spans.size() : std::min(limit, spans.size());
  size_t first = std::min(n, spans.first.size());
  device.append(reinterpret_cast<const char*>(spans.first.data()), first);
  device.append(reinterpret_cast<const char*>(spans.second.data()), n - first);
  consumer.consume(n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  bool extension = in.u8() & 1;
  size_t capacity = 1 + in.u16() % 4096;
  uint64_t skip = in.u16();

  shm::RingHeader header{};
  std::vector<uint8_t> ring_bytes(capacity);
  RingProducer producer(&header, ring_bytes.data(), capacity);
  RingConsumer consumer(&header, ring_bytes.data(), capacity);
  std::string expected;  // what the device must receive
  std::string device;    // what it did receive
  DownCopy copy;

  while (!in.empty()) {
    size_t drain_step = in.u8();
    std::string_view bytes = in.record();
    pb::DataResponse response;
    if (!response.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) continue;

    ResponseReading reading = read_response(response, extension);
    int action = static_cast<int>(response.action());
    if (reading.kind == ResponseKind::Ack) {
      FUZZ_CHECK(action == resume::kActionAck);
      if (reading.ack_count) {
        FUZZ_CHECK(extension && response.data_size() == 1);
        // The acknowledgement is a plain decimal count.
        FUZZ_CHECK(resume::decode_ack(resume::encode_ack(*reading.ack_count)) == reading.ack_count);
        for (char c : response.data(0)) FUZZ_CHECK(c >= '0' && c <= '9');
      }
      continue;  // never relayed
    }
    if (reading.kind == ResponseKind::Kill) {
      FUZZ_CHECK(action == pb::DATA_ACTION_KILL);
      break;  // the session ends; nothing more is relayed
    }
    FUZZ_CHECK(reading.restart == (action == pb::DATA_ACTION_RESTART));
    if (response.data_size() == 0) continue;

    std::string whole;
    for (const auto& chunk : response.data()) whole += chunk;
    uint64_t skipped = std::min<uint64_t>(std::exchange(skip, 0), whole.size());
    expected += whole.substr(static_cast<size_t>(skipped));
    copy.start(response, skipped);
    // Copy until complete, the listener draining in between, as the wake-ups
    // between uplink and listener would have it.
    for (size_t turns = 0;; ++turns) {
      DownCopy::Progress p = copy.copy(response, producer);
      if (p.complete) break;
      FUZZ_CHECK(producer.free_space() == 0);  // it stops only on a full ring
      FUZZ_CHECK(turns <= whole.size());       // and always makes progress
      drain(consumer, drain_step, device);
    }
  }
  drain(consumer, 0, device);
  FUZZ_CHECK(device == expected);
  return 0;
}
