#include "ingest/registry.h"

#include "ingest/json_reader.h"

namespace kbgp::ingest {

namespace {

const char* family_name(const Endpoint& e) { return e.family == AF_INET6 ? "IPv6" : "IPv4"; }

// Reads one "devices" entry; returns false with `error` set.
bool parse_device(json_t* item, size_t index, Device* d, std::string* error) {
  std::string where = "devices[" + std::to_string(index) + "]";
  ObjectReader r(item, where);
  std::string ip, collector, source;
  bool ok = r.only_keys({"device_ip", "site_id", "company_id", "device_id", "device_name",
                         "md5_key", "collector", "source_ip"}) &&
            r.string("device_ip", ip, true) && r.uint32("site_id", d->site_id, false) &&
            r.uint32("company_id", d->company_id, true) &&
            r.uint32("device_id", d->device_id, true) &&
            r.string("device_name", d->device_name, true) &&
            r.string("md5_key", d->md5_key, false) && r.string("collector", collector, true) &&
            r.string("source_ip", source, false);
  if (!ok) {
    *error = r.error();
    return false;
  }
  where += " (device_ip " + ip + "): ";
  auto parsed_ip = Endpoint::parse_address(ip);
  if (!parsed_ip) {
    *error = where + "field \"device_ip\" is not an IPv4 or IPv6 address: \"" + ip + "\"";
    return false;
  }
  d->ip = parsed_ip->unmapped();
  if (d->device_name.empty()) {
    *error = where + "field \"device_name\" must not be empty";
    return false;
  }
  if (d->md5_key.size() > kMaxMd5KeyLength) {
    *error = where + "field \"md5_key\" is longer than " + std::to_string(kMaxMd5KeyLength) +
             " bytes";
    return false;
  }
  auto parsed_collector = Endpoint::parse(collector);
  if (!parsed_collector || parsed_collector->port == 0) {
    *error = where + "field \"collector\" must be \"address:port\" (IPv6 as \"[::1]:179\"), "
                     "found \"" + collector + "\"";
    return false;
  }
  d->collector = parsed_collector->unmapped();
  if (source.empty()) {
    d->source = d->ip;
  } else {
    auto parsed_source = Endpoint::parse_address(source);
    if (!parsed_source) {
      *error = where + "field \"source_ip\" is not an IPv4 or IPv6 address: \"" + source + "\"";
      return false;
    }
    d->source = parsed_source->unmapped();
  }
  if (d->source.family != d->collector.family) {
    *error = where + "source address " + d->source.address_string() + " is " +
             family_name(d->source) + " but collector " + d->collector.to_string() + " is " +
             family_name(d->collector) +
             (source.empty() ? "; set \"source_ip\" to a local address of the collector's family"
                             : "");
    return false;
  }
  return true;
}

}  // namespace

std::optional<Registry> Registry::parse(const std::string& text, std::string* error) {
  JsonPtr root = json_parse_text(text, error);
  if (!root) return std::nullopt;
  ObjectReader top(root.get(), "top level");
  json_t* list = top.only_keys({"devices"}) ? top.array("devices") : nullptr;
  if (!list) {
    *error = top.error();
    return std::nullopt;
  }
  Registry reg;
  size_t index;
  json_t* item;
  json_array_foreach(list, index, item) {
    Device d;
    if (!parse_device(item, index, &d, error)) return std::nullopt;
    for (size_t j = 0; j < reg.devices_.size(); ++j) {
      const Device& other = reg.devices_[j];
      if (other.site_id == d.site_id && other.ip.same_address(d.ip)) {
        *error = "devices[" + std::to_string(index) + "]: device_ip " + d.ip.address_string() +
                 " with site_id " + std::to_string(d.site_id) + " is already listed as devices[" +
                 std::to_string(j) + "]";
        return std::nullopt;
      }
    }
    reg.devices_.push_back(std::move(d));
  }
  return reg;
}

std::optional<Registry> Registry::load(const std::string& path, std::string* error) {
  std::string text;
  if (!read_text_file(path, &text, error)) return std::nullopt;
  auto reg = parse(text, error);
  if (!reg) *error = path + ": " + *error;
  return reg;
}

const Device* Registry::find(const Endpoint& ip, uint32_t site) const {
  for (const auto& d : devices_) {
    if (site != 0 && d.site_id != site) continue;
    if (d.ip.same_address(ip)) return &d;
  }
  return nullptr;
}

const Device* Registry::find(const std::string& ip, uint32_t site) const {
  auto parsed = Endpoint::parse_address(ip);
  if (!parsed) return nullptr;
  return find(*parsed, site);
}

}  // namespace kbgp::ingest
