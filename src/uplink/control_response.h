// What the uplink takes from one ControlResponse (proxy.proto): the plain
// ControlAnswer its cache, sessions and Data metadata use. Kept apart from
// the Control stream (control_client.cc) so the fuzzer feeds it arbitrary
// backend answers without a live stream (tests/fuzz/fuzz_control.cc).
#pragma once

#include "kentik/ktbgp/v202203beta2/proxy.pb.h"
#include "uplink/control_answer.h"

namespace kbgp::uplink {

// Any action other than BLOCK_IP allows the device (the interface's
// UNSPECIFIED); the Control stream handles KEEPALIVE before this. tcp_md5
// is not copied: the answer outlives the key's short transit.
ControlAnswer answer_from_response(const kentik::ktbgp::v202203beta2::ControlResponse& r);

}  // namespace kbgp::uplink
