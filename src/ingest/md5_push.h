// Which devices' TCP-MD5 keys a Control stream pushes to its agent, so that
// a device with a key connects on its first SYN (the agent installs pushed
// keys on its listening sockets ahead of time):
//  * when the stream opens, and again every half ttl (the agent keeps a
//    key for ttl_seconds): every device of the agent's site with a key;
//  * after a registry reload: every device whose key changed (an answer
//    with the new key, or without one when it was cleared), and every
//    device with a key that left the registry (a BLOCK_IP answer, what a
//    request for it would get now, so the agent drops its key and refuses
//    it).
// Site rules as in Registry::find: site 0 (any) takes the first entry of an
// address. gRPC-free, so unit-tested without a server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ingest/registry.h"

namespace kbgp::ingest {

// The devices of `site` that have a key.
std::vector<const Device*> keyed_devices(const Registry& registry, uint32_t site);

struct KeyChange {
  std::string device_ip;
  const Device* device = nullptr;  // in `after`; null = left the registry
};
// What changed for keys between two registries, seen from `site`.
std::vector<KeyChange> key_changes(const Registry& before, const Registry& after, uint32_t site);

}  // namespace kbgp::ingest
