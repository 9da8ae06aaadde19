#include "uplink/wire_request.h"

#include <grpc/slice.h>

#include <cstring>

namespace kbgp::uplink {

namespace {

// Protobuf's wire format, the two fields of DataRequest.
constexpr uint8_t kActionTag = (1 << 3) | 0;  // field 1, varint
constexpr uint8_t kDataTag = (2 << 3) | 2;    // field 2, length-delimited
constexpr size_t kMaxHeader = 1 + 10 + 1 + 10;

size_t put_varint(uint64_t v, uint8_t* out) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<uint8_t>(v);
  return n;
}

// An enum field is an int32; a negative one goes as its 64-bit two's
// complement (ten bytes), as protobuf writes it.
uint64_t enum_wire_value(int action) { return static_cast<uint64_t>(static_cast<int64_t>(action)); }

size_t put_header(int action, bool has_data, size_t n, uint8_t* out) {
  size_t len = 0;
  if (action != 0) {
    out[len++] = kActionTag;
    len += put_varint(enum_wire_value(action), out + len);
  }
  if (has_data) {
    out[len++] = kDataTag;
    len += put_varint(n, out + len);
  }
  return len;
}

grpc::ByteBuffer build(int action, bool has_data, size_t n, const WireDataRequest::Fill* fill) {
  uint8_t header[kMaxHeader];
  size_t header_len = put_header(action, has_data, n, header);
  // One allocation for header and payload; the grpc::Slice takes over our
  // reference (STEAL_REF), the ByteBuffer then holds its own.
  grpc_slice raw = grpc_slice_malloc(header_len + n);
  uint8_t* out = GRPC_SLICE_START_PTR(raw);
  std::memcpy(out, header, header_len);
  if (n) (*fill)(out + header_len, n);
  grpc::Slice slice(raw, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

void WireDataRequest::set_action(int action) { buffer_ = build(action, false, 0, nullptr); }

void WireDataRequest::set(int action, size_t n, const Fill& fill) {
  buffer_ = build(action, true, n, &fill);
}

void WireDataRequest::set(int action, std::string_view data) {
  Fill copy = [data](uint8_t* out, size_t n) { std::memcpy(out, data.data(), n); };
  buffer_ = build(action, true, data.size(), &copy);
}

}  // namespace kbgp::uplink
