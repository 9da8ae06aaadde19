#include "uplink/control_response.h"

namespace kbgp::uplink {

namespace pb = kentik::ktbgp::v202203beta2;

ControlAnswer answer_from_response(const pb::ControlResponse& r) {
  ControlAnswer a;
  a.proto = r.proto();
  a.device_ip = r.device_ip();
  a.device_port = r.device_port();
  a.proxy_ip = r.proxy_ip();
  a.proxy_port = r.proxy_port();
  a.ttl_seconds = r.ttl_seconds();
  a.ttl_counter = r.ttl_counter();
  a.verdict = r.action() == pb::CONTROL_ACTION_BLOCK_IP ? ControlVerdict::Block
                                                        : ControlVerdict::Allow;
  for (const auto& kv : r.metadata()) {
    KeyValues k;
    k.key = kv.key();
    k.values.assign(kv.val().begin(), kv.val().end());
    a.metadata.push_back(std::move(k));
  }
  a.company_id = r.company_id();
  a.device_id = r.device_id();
  a.device_name = r.device_name();
  return a;
}

}  // namespace kbgp::uplink
