// What the uplink decides about the backend's messages without a stream
// (uplink/data_decisions.h, control_response.h): how a DataResponse is
// read, how its data is copied into the down ring (also when part of it was
// delivered before a resume), how the backend's initial metadata is judged,
// and what a ControlResponse becomes. tests/fuzz/fuzz_data_response.cc,
// fuzz_resume.cc and fuzz_control.cc drive the same code with arbitrary
// input.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/layout.h"
#include "common/resume_protocol.h"
#include "common/ring.h"
#include "uplink/control_response.h"
#include "uplink/data_decisions.h"

using namespace kbgp;
using namespace kbgp::uplink;
namespace pb = kentik::ktbgp::v202203beta2;

namespace {

pb::DataResponse response(int action, std::vector<std::string> chunks) {
  pb::DataResponse r;
  r.set_action(static_cast<pb::DataAction>(action));
  for (auto& c : chunks) r.add_data(std::move(c));
  return r;
}

struct SmallRing {
  explicit SmallRing(size_t capacity) : bytes(capacity) {}
  shm::RingHeader header{};
  std::vector<uint8_t> bytes;
  RingProducer producer() { return RingProducer(&header, bytes.data(), bytes.size()); }
  std::string drain() {
    RingConsumer c(&header, bytes.data(), bytes.size());
    std::string out(c.available(), '\0');
    c.peek(0, reinterpret_cast<uint8_t*>(out.data()), out.size());
    c.consume(out.size());
    return out;
  }
};

}  // namespace

TEST_CASE("a DataResponse is an acknowledgement, a KILL, or data to relay") {
  auto ack = read_response(response(resume::kActionAck, {"17"}), true);
  CHECK(ack.kind == ResponseKind::Ack);
  CHECK(ack.ack_count == 17u);
  // Without the extension, or not one decimal entry: an invalid acknowledgement.
  CHECK_FALSE(read_response(response(resume::kActionAck, {"17"}), false).ack_count);
  CHECK_FALSE(read_response(response(resume::kActionAck, {"1", "2"}), true).ack_count);
  CHECK_FALSE(read_response(response(resume::kActionAck, {"-1"}), true).ack_count);
  CHECK(read_response(response(pb::DATA_ACTION_KILL, {"x"}), true).kind == ResponseKind::Kill);
  auto restart = read_response(response(pb::DATA_ACTION_RESTART, {}), false);
  CHECK(restart.kind == ResponseKind::Relay);
  CHECK(restart.restart);
  // Unknown actions relay their data like UNSPECIFIED.
  auto unknown = read_response(response(9, {"x"}), false);
  CHECK(unknown.kind == ResponseKind::Relay);
  CHECK_FALSE(unknown.restart);
}

TEST_CASE("DownCopy fills a small ring over several calls, skipping what was delivered") {
  SmallRing ring(5);
  auto producer = ring.producer();
  auto r = response(0, {"abc", "", "defgh", "ij"});
  DownCopy copy;
  copy.start(r, 4);  // "abc" and "d" are in the ring already
  std::string device;
  auto p = copy.copy(r, producer);
  CHECK(p.wrote);
  CHECK_FALSE(p.complete);
  device += ring.drain();
  p = copy.copy(r, producer);
  CHECK(p.complete);
  device += ring.drain();
  CHECK(device == "efghij");
  // A skip beyond the response skips all of it.
  copy.start(r, 100);
  p = copy.copy(r, producer);
  CHECK(p.complete);
  CHECK_FALSE(p.wrote);
}

TEST_CASE("the backend's initial metadata: strict counters, the resume extension") {
  Metadata strict{{"counter-up", "10"}, {"counter-down", "4"}};
  CHECK_FALSE(judge_stream_open(strict, 10, 4, 11).decision.kill);
  CHECK(judge_stream_open(strict, 11, 4, 11).decision.kill);
  CHECK(judge_stream_open({{"counter-up", "10"}}, 10, 4, 0).decision.kill);
  CHECK(judge_stream_open({{"counter-up", "1O"}, {"counter-down", "4"}}, 10, 4, 0).decision.kill);
  Metadata resumed{{"counter-up", "7"}, {"counter-down", "6"}, {"x-kbgp-resume", "1"}};
  auto v = judge_stream_open(resumed, 10, 4, 5);
  CHECK(v.extension);
  CHECK_FALSE(v.decision.kill);
  CHECK(v.decision.resend_from == 8);
  CHECK(v.decision.resend_to == 10);
  CHECK(v.server_down == 6);
  // What the backend lacks is no longer kept: KILL.
  CHECK(judge_stream_open(resumed, 10, 4, 8).decision.kill);
}

TEST_CASE("a ControlResponse becomes a ControlAnswer; any action but BLOCK_IP allows") {
  pb::ControlResponse r;
  r.set_proto("BGP");
  r.set_device_ip("127.0.0.3");
  r.set_ttl_seconds(60);
  r.set_ttl_counter(2);
  r.set_device_id(3);
  r.set_device_name("router3");
  r.set_tcp_md5("secret");
  auto* kv = r.add_metadata();
  kv->set_key("backend-pin");
  kv->add_val("42b0e9c9");
  ControlAnswer a = answer_from_response(r);
  CHECK(a.device_ip == "127.0.0.3");
  CHECK(a.ttl_seconds == 60);
  CHECK(a.ttl_counter == 2);
  CHECK(a.device_label() == "3:router3");
  REQUIRE(a.metadata.size() == 1);
  CHECK(a.metadata[0].values == std::vector<std::string>{"42b0e9c9"});
  CHECK_FALSE(a.blocked());
  r.set_action(pb::CONTROL_ACTION_BLOCK_IP);
  CHECK(answer_from_response(r).blocked());
  r.set_action(static_cast<pb::ControlAction>(7));
  CHECK_FALSE(answer_from_response(r).blocked());
}
