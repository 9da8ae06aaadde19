// WireDataRequest writes DataRequests by hand; protobuf must read back
// exactly what the generated code would have sent, byte for byte.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "kentik/ktbgp/v202203beta2/proxy.pb.h"
#include "common/resume_protocol.h"
#include "uplink/wire_request.h"

namespace pb = kentik::ktbgp::v202203beta2;
using kbgp::uplink::WireDataRequest;

namespace {

std::string flatten(const WireDataRequest& request) {
  std::vector<grpc::Slice> slices;
  REQUIRE(request.buffer().Dump(&slices).ok());
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// What gRPC would put on the wire for `request`, through the traits.
std::string serialised(const WireDataRequest& request) {
  grpc::ByteBuffer bb;
  bool own = false;
  REQUIRE(grpc::SerializationTraits<WireDataRequest>::Serialize(request, &bb, &own).ok());
  CHECK(own);
  std::vector<grpc::Slice> slices;
  REQUIRE(bb.Dump(&slices).ok());
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::string payload(size_t n) {
  std::string p(n, '\0');
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>(i * 7 + 3);
  return p;
}

}  // namespace

TEST_CASE("WireDataRequest: data only, the same bytes protobuf writes, at every length-prefix size") {
  // 1-, 2- and 3-byte varint lengths, and a full 256 KiB batch.
  for (size_t n : {size_t{0}, size_t{1}, size_t{127}, size_t{128}, size_t{16383}, size_t{16384},
                   size_t{256 * 1024}}) {
    INFO("payload " << n);
    std::string data = payload(n);
    WireDataRequest wire;
    // Filled through the callback, in two pieces as from a wrapped ring.
    wire.set(0, n, [&](uint8_t* out, size_t len) {
      REQUIRE(len == n);
      size_t half = len / 2;
      std::memcpy(out, data.data(), half);
      std::memcpy(out + half, data.data() + half, len - half);
    });
    pb::DataRequest expected;
    expected.add_data(data);
    CHECK(serialised(wire) == expected.SerializeAsString());
    CHECK(wire.size() == expected.ByteSizeLong());
    pb::DataRequest parsed;
    REQUIRE(parsed.ParseFromString(flatten(wire)));
    CHECK(parsed.action() == pb::DATA_ACTION_UNSPECIFIED);
    REQUIRE(parsed.data_size() == 1);
    CHECK(parsed.data(0) == data);
  }
}

TEST_CASE("WireDataRequest: action-only requests (KILL, RESTART, an empty resend)") {
  for (int action : {static_cast<int>(pb::DATA_ACTION_KILL), static_cast<int>(pb::DATA_ACTION_RESTART), 0}) {
    INFO("action " << action);
    WireDataRequest wire;
    wire.set_action(action);
    pb::DataRequest expected;
    expected.set_action(static_cast<pb::DataAction>(action));
    CHECK(serialised(wire) == expected.SerializeAsString());
    pb::DataRequest parsed;
    REQUIRE(parsed.ParseFromString(flatten(wire)));
    CHECK(parsed.action() == action);
    CHECK(parsed.data_size() == 0);
  }
}

TEST_CASE("WireDataRequest: the resume acknowledgement (a two-byte action and data)") {
  const std::string ack = kbgp::resume::encode_ack(123456789);
  WireDataRequest wire;
  wire.set(kbgp::resume::kActionAck, ack);
  pb::DataRequest expected;
  expected.set_action(static_cast<pb::DataAction>(kbgp::resume::kActionAck));
  expected.add_data(ack);
  CHECK(serialised(wire) == expected.SerializeAsString());
}

TEST_CASE("WireDataRequest: a negative action goes as protobuf writes an int32 enum") {
  WireDataRequest wire;
  wire.set(-1, "x");
  pb::DataRequest expected;
  expected.set_action(static_cast<pb::DataAction>(-1));
  expected.add_data(std::string(1, 'x'));  // not add_data(const char*): a -Wrestrict false positive in g++ 12
  CHECK(serialised(wire) == expected.SerializeAsString());
}

TEST_CASE("WireDataRequest: a cleared request is refused by the traits, not sent empty") {
  WireDataRequest wire;
  wire.set(0, "abc");
  wire.clear();
  CHECK(wire.size() == 0);
  grpc::ByteBuffer bb;
  bool own = false;
  CHECK_FALSE(grpc::SerializationTraits<WireDataRequest>::Serialize(wire, &bb, &own).ok());
}
