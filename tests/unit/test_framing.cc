#include <catch2/catch.hpp>

#include <vector>

#include "common/bgp_framing.h"

using namespace kbgp::bgp;

namespace {
std::vector<uint8_t> header(uint16_t length, uint8_t type) {
  std::vector<uint8_t> m(16, 0xff);
  m.push_back(static_cast<uint8_t>(length >> 8));
  m.push_back(static_cast<uint8_t>(length));
  m.push_back(type);
  return m;
}

std::vector<uint8_t> open_message(uint16_t asn, bool extended, uint32_t as4) {
  std::vector<uint8_t> caps;
  caps.insert(caps.end(), {1, 4, 0, 1, 0, 1});  // multiprotocol ipv4 unicast
  if (extended) caps.insert(caps.end(), {6, 0});
  if (as4) caps.insert(caps.end(), {65, 4, uint8_t(as4 >> 24), uint8_t(as4 >> 16),
                                    uint8_t(as4 >> 8), uint8_t(as4)});
  std::vector<uint8_t> params = {2, static_cast<uint8_t>(caps.size())};
  params.insert(params.end(), caps.begin(), caps.end());
  uint16_t len = static_cast<uint16_t>(29 + params.size());
  auto m = header(len, kOpen);
  m.insert(m.end(), {4, uint8_t(asn >> 8), uint8_t(asn), 0, 90, 10, 0, 0, 3,
                     static_cast<uint8_t>(params.size())});
  m.insert(m.end(), params.begin(), params.end());
  return m;
}
}  // namespace

TEST_CASE("a keepalive is a complete 19-byte frame") {
  auto m = header(19, kKeepalive);
  auto r = check_frame(m, kMaxMessage);
  CHECK(r.status == FrameCheck::Status::Complete);
  CHECK(r.length == 19);
  CHECK(r.type == kKeepalive);
}

TEST_CASE("a partial header or body is incomplete, not malformed") {
  auto m = header(100, kUpdate);
  m.resize(100);
  for (size_t n = 0; n < 100; ++n) {
    auto r = check_frame(std::span(m.data(), n), kMaxMessage);
    INFO("bytes " << n);
    CHECK(r.status == FrameCheck::Status::Incomplete);
  }
  CHECK(check_frame(m, kMaxMessage).status == FrameCheck::Status::Complete);
}

TEST_CASE("a bad marker byte is malformed as soon as it arrives") {
  std::vector<uint8_t> m = {0xff, 0xff, 0xfe};
  auto r = check_frame(m, kMaxMessage);
  CHECK(r.status == FrameCheck::Status::Malformed);
  CHECK(std::string(r.error) == "bad marker");
}

TEST_CASE("lengths outside 19..max are malformed") {
  CHECK(check_frame(header(18, kUpdate), kMaxMessage).status == FrameCheck::Status::Malformed);
  CHECK(check_frame(header(4097, kUpdate), kMaxMessage).status == FrameCheck::Status::Malformed);
  CHECK(check_frame(header(4096, kUpdate), kMaxMessage).status == FrameCheck::Status::Incomplete);
  CHECK(check_frame(header(65535, kUpdate), kMaxExtendedMessage).status ==
        FrameCheck::Status::Incomplete);
}

TEST_CASE("type-specific minimum lengths are enforced") {
  CHECK(check_frame(header(20, kKeepalive), kMaxMessage).status == FrameCheck::Status::Malformed);
  CHECK(check_frame(header(28, kOpen), kMaxMessage).status == FrameCheck::Status::Malformed);
  CHECK(check_frame(header(22, kUpdate), kMaxMessage).status == FrameCheck::Status::Malformed);
  CHECK(check_frame(header(20, kNotification), kMaxMessage).status ==
        FrameCheck::Status::Malformed);
  CHECK(check_frame(header(19, 0), kMaxMessage).status == FrameCheck::Status::Malformed);
}

TEST_CASE("a malformed frame names its reason for the counters") {
  using kbgp::bad_input::Framing;
  CHECK(check_frame(std::vector<uint8_t>{0xff, 0x00}, kMaxMessage).reason == Framing::BadMarker);
  CHECK(check_frame(header(18, kUpdate), kMaxMessage).reason == Framing::LengthBelowMinimum);
  CHECK(check_frame(header(4097, kUpdate), kMaxMessage).reason == Framing::LengthAboveMaximum);
  CHECK(check_frame(header(65535, kUpdate), kMaxMessage).reason == Framing::LengthAboveMaximum);
  CHECK(check_frame(header(20, kKeepalive), kMaxMessage).reason == Framing::ShortForType);
  CHECK(check_frame(header(28, kOpen), kMaxMessage).reason == Framing::ShortForType);
  CHECK(check_frame(header(19, 0), kMaxMessage).reason == Framing::TypeZero);
}

TEST_CASE("parse_open reads ASN, hold time, router id and capabilities") {
  auto m = open_message(65003, true, 4200000001u);
  auto info = parse_open(m);
  REQUIRE(info);
  CHECK(info->version == 4);
  CHECK(info->hold_time == 90);
  CHECK(info->asn == 4200000001u);
  CHECK(info->four_octet_asn);
  CHECK(info->extended_message);
  const uint8_t* rid = reinterpret_cast<const uint8_t*>(&info->router_id);
  CHECK(rid[0] == 10);
  CHECK(rid[3] == 3);

  auto plain = parse_open(open_message(65001, false, 0));
  REQUIRE(plain);
  CHECK(plain->asn == 65001);
  CHECK_FALSE(plain->extended_message);
}

TEST_CASE("parse_open refuses truncated capabilities") {
  auto m = open_message(65003, true, 0);
  m.back() = 9;  // the last capability (extended message) claims 9 bytes
  CHECK_FALSE(parse_open(m));
  auto n = open_message(65003, true, 0);
  n[28] = static_cast<uint8_t>(n[28] + 5);  // optional parameters run past the end
  CHECK_FALSE(parse_open(n));
}

TEST_CASE("extended messages need both OPENs") {
  SessionFraming f;
  CHECK(f.max_length() == kMaxMessage);
  OpenInfo ext;
  ext.extended_message = true;
  f.device_open(ext);
  CHECK(f.max_length() == kMaxMessage);
  f.peer_open(ext);
  CHECK(f.max_length() == kMaxExtendedMessage);
}
