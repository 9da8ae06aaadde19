// A DataRequest serialised by us, straight from the up ring into the one
// buffer gRPC sends. With the generated stub every batch was copied twice
// before TLS: from the ring into the message's `data` string, then by
// protobuf into gRPC's buffer (13 % of the uplink's samples in raw mode
// were memmove). Here the payload is copied once, into a slice that gRPC
// takes by reference.
//
// The bytes are exactly what protobuf would write for the same
// pb::DataRequest (field 1 `action` unless 0, then each `data` element as
// field 2), so the backend cannot tell the difference; the unit test parses
// them back with protobuf.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "kentik/ktbgp/v202203beta2/proxy.pb.h"

namespace kbgp::uplink {

class WireDataRequest {
 public:
  // Fills `n` bytes at `out` (the payload of the one `data` element).
  using Fill = std::function<void(uint8_t* out, size_t n)>;

  // An action and no data element.
  void set_action(int action);
  // An action (0: none) and one data element of `n` bytes written by `fill`.
  void set(int action, size_t n, const Fill& fill);
  void set(int action, std::string_view data);
  // Drops the buffer (gRPC keeps its own reference while it needs it).
  void clear() { buffer_.Clear(); }

  const grpc::ByteBuffer& buffer() const { return buffer_; }
  size_t size() const { return buffer_.Valid() ? buffer_.Length() : 0; }

 private:
  grpc::ByteBuffer buffer_;
};

// Data streams are called through this stub, with the method's full name.
using DataStub = grpc::TemplatedGenericStub<WireDataRequest, kentik::ktbgp::v202203beta2::DataResponse>;
// A std::string that lives as long as the program: PrepareCall keeps a
// pointer to the name in the call's ClientRpcInfo.
inline const std::string kDataMethod = "/kentik.ktbgp.v202203beta2.ProxyService/Data";

}  // namespace kbgp::uplink

namespace grpc {
// How gRPC turns a WireDataRequest into bytes: a reference to its buffer.
// A request never set (or cleared) is refused; ClientAsyncReaderWriter::
// Write asserts that serialisation succeeded, so that would end the
// process: the session sets the request before every write().
template <>
class SerializationTraits<kbgp::uplink::WireDataRequest> {
 public:
  static Status Serialize(const kbgp::uplink::WireDataRequest& msg, ByteBuffer* bb,
                          bool* own_buffer) {
    if (!msg.buffer().Valid()) return Status(StatusCode::INTERNAL, "empty WireDataRequest");
    *bb = msg.buffer();  // the slices' references, not their bytes
    *own_buffer = true;
    return Status::OK;
  }
};
}  // namespace grpc
