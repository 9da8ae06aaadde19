// kbgp-ingest: which TCP-MD5 keys a Control stream pushes, and which
// changes a registry reload pushes.
#include <catch2/catch.hpp>

#include <string>

#include "ingest/md5_push.h"

using kbgp::ingest::key_changes;
using kbgp::ingest::keyed_devices;
using kbgp::ingest::Registry;

namespace {

std::string device(const char* ip, int site, int id, const char* key) {
  return std::string(R"({"device_ip": ")") + ip + R"(", "site_id": )" + std::to_string(site) +
         R"(, "company_id": 1, "device_id": )" + std::to_string(id) +
         R"(, "device_name": "r)" + std::to_string(id) + R"(", "md5_key": ")" + key +
         R"(", "collector": "127.0.0.2:179"})";
}

Registry registry(std::initializer_list<std::string> devices) {
  std::string text = R"({"devices": [)";
  bool first = true;
  for (const auto& d : devices) {
    text += (first ? "" : ",") + d;
    first = false;
  }
  text += "]}";
  std::string error;
  auto r = Registry::parse(text, &error);
  INFO(error);
  REQUIRE(r);
  return std::move(*r);
}

}  // namespace

TEST_CASE("md5 push: the keyed devices of a site", "[ingest][md5]") {
  Registry r = registry({device("127.0.0.3", 0, 3, "k3"), device("127.0.0.4", 7, 4, "k4"),
                         device("127.0.0.4", 8, 5, "k5"), device("127.0.0.5", 7, 6, "")});
  auto any = keyed_devices(r, 0);
  REQUIRE(any.size() == 2);  // site 0 takes the first entry of 127.0.0.4
  CHECK(any[0]->device_id == 3);
  CHECK(any[1]->device_id == 4);
  auto seven = keyed_devices(r, 7);
  REQUIRE(seven.size() == 1);
  CHECK(seven[0]->device_id == 4);
  auto eight = keyed_devices(r, 8);
  REQUIRE(eight.size() == 1);
  CHECK(eight[0]->device_id == 5);
  CHECK(keyed_devices(r, 9).empty());
}

TEST_CASE("md5 push: changes between two registries", "[ingest][md5]") {
  Registry before = registry({device("127.0.0.3", 0, 3, "k3"), device("127.0.0.4", 0, 4, "k4"),
                              device("127.0.0.5", 0, 5, "k5"), device("127.0.0.6", 0, 6, ""),
                              device("127.0.0.7", 0, 7, "same")});
  Registry after = registry({device("127.0.0.3", 0, 3, "k3-new"), device("127.0.0.4", 0, 4, ""),
                             device("127.0.0.6", 0, 6, ""), device("127.0.0.7", 0, 7, "same"),
                             device("127.0.0.8", 0, 8, "k8")});
  auto changes = key_changes(before, after, 0);
  REQUIRE(changes.size() == 4);
  CHECK(changes[0].device_ip == "127.0.0.3");  // key changed
  REQUIRE(changes[0].device);
  CHECK(changes[0].device->md5_key == "k3-new");
  CHECK(changes[1].device_ip == "127.0.0.4");  // key cleared
  REQUIRE(changes[1].device);
  CHECK(changes[1].device->md5_key.empty());
  CHECK(changes[2].device_ip == "127.0.0.8");  // new with a key
  CHECK(changes[3].device_ip == "127.0.0.5");  // gone
  CHECK(changes[3].device == nullptr);
  CHECK(key_changes(after, after, 0).empty());
  // Seen from another site, none of these devices exist.
  CHECK(key_changes(before, after, 9).empty());
}
