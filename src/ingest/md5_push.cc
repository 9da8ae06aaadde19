#include "ingest/md5_push.h"

namespace kbgp::ingest {

namespace {

// True for the entry that answers requests for its address from `site`.
bool answers(const Registry& registry, const Device& d, uint32_t site) {
  return registry.find(d.ip, site) == &d;
}

}  // namespace

std::vector<const Device*> keyed_devices(const Registry& registry, uint32_t site) {
  std::vector<const Device*> out;
  for (const Device& d : registry.devices())
    if (!d.md5_key.empty() && answers(registry, d, site)) out.push_back(&d);
  return out;
}

std::vector<KeyChange> key_changes(const Registry& before, const Registry& after, uint32_t site) {
  std::vector<KeyChange> out;
  for (const Device& d : after.devices()) {
    if (!answers(after, d, site)) continue;
    const Device* old = before.find(d.ip, site);
    const std::string& old_key = old ? old->md5_key : std::string();
    if (d.md5_key != old_key) out.push_back({d.ip.address_string(), &d});
  }
  for (const Device& o : before.devices()) {
    if (o.md5_key.empty() || !answers(before, o, site)) continue;
    if (!after.find(o.ip, site)) out.push_back({o.ip.address_string(), nullptr});
  }
  return out;
}

}  // namespace kbgp::ingest
