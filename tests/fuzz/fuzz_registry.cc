// libFuzzer target: kbgp-ingest's device registry file (ingest/registry.h,
// json_reader.h). Whatever the file holds, it is refused with a message or
// accepted with entries in range; an accepted registry written back as
// JSON parses to the same devices, and every device is found by its own
// address and site.
//
// Input: the file's text.
#include <jansson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_input.h"
#include "ingest/registry.h"

using namespace kbgp;
using namespace kbgp::ingest;

namespace {

std::string write_back(const Registry& registry) {
  json_t* devices = json_array();
  for (const Device& d : registry.devices()) {
    json_t* o = json_object();
    json_object_set_new(o, "device_ip", json_string(d.ip.address_string().c_str()));
    json_object_set_new(o, "site_id", json_integer(d.site_id));
    json_object_set_new(o, "company_id", json_integer(d.company_id));
    json_object_set_new(o, "device_id", json_integer(d.device_id));
    json_object_set_new(o, "device_name", json_stringn(d.device_name.data(), d.device_name.size()));
    json_object_set_new(o, "md5_key", json_stringn(d.md5_key.data(), d.md5_key.size()));
    json_object_set_new(o, "collector", json_string(d.collector.to_string().c_str()));
    json_object_set_new(o, "source_ip", json_string(d.source.address_string().c_str()));
    json_array_append_new(devices, o);
  }
  json_t* root = json_object();
  json_object_set_new(root, "devices", devices);
  char* text = json_dumps(root, JSON_COMPACT);
  std::string out = text ? text : "";
  free(text);
  json_decref(root);
  return out;
}

bool same(const Device& a, const Device& b) {
  return a.ip == b.ip && a.site_id == b.site_id && a.company_id == b.company_id &&
         a.device_id == b.device_id && a.device_name == b.device_name && a.md5_key == b.md5_key &&
         a.collector == b.collector && a.source == b.source;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto registry = Registry::parse(text, &error);
  if (!registry) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  for (const Device& d : registry->devices()) {
    FUZZ_CHECK(d.ip.port == 0 && d.source.port == 0);
    FUZZ_CHECK(d.md5_key.size() <= kMaxMd5KeyLength);
    FUZZ_CHECK(!d.device_name.empty());
    FUZZ_CHECK(d.collector.family == AF_INET || d.collector.family == AF_INET6);
    const Device* found = registry->find(d.ip, d.site_id);
    FUZZ_CHECK(found && found->ip.same_address(d.ip));
    FUZZ_CHECK(registry->find(d.ip.address_string(), 0) != nullptr);
  }
  std::string again_text = write_back(*registry);
  auto again = Registry::parse(again_text, &error);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->size() == registry->size());
  for (size_t i = 0; i < registry->size(); ++i)
    FUZZ_CHECK(same(again->devices()[i], registry->devices()[i]));
  return 0;
}
