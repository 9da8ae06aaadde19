// libFuzzer target: Control answers from the backend (ControlResponse with
// any metadata, action, ttl and key) through the uplink's real code: the
// answer conversion, the answer cache, the Data call's metadata built from
// the answer, the JSON shown by the admin and logged, and the TCP-MD5 relay.
//
// Input: records, each a step byte (low 4 bits: seconds that pass before
// it; bit 4: drop the device's cache entry after it, as a Data KILL does;
// bit 5: the answer came unasked, pushed by the backend), a 16-bit
// little-endian length and a serialized ControlResponse.
#include <jansson.h>

#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/ipc.h"
#include "common/layout.h"
#include "common/log.h"
#include "fuzz_input.h"
#include "kentik/ktbgp/v202203beta2/proxy.pb.h"
#include "uplink/control_cache.h"
#include "uplink/control_response.h"
#include "uplink/md5_relay.h"
#include "uplink/metadata.h"

using namespace kbgp;
using namespace kbgp::uplink;
namespace pb = kentik::ktbgp::v202203beta2;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
const std::string kToken = "s3cr3t-T0KEN";

AgentIdentity agent() {
  AgentIdentity a;
  a.email = "ops@example.com";
  a.token = kToken;
  a.site_id = 7;
  a.version = "0.1.0";
  a.instance = "64bae291-66ea-4910-a2a2-92eb99224a28";
  return a;
}

// `flags` 0: as strict as the admin's reader (status_json.cc); log lines
// may carry "\u0000", which is valid JSON.
bool valid_json(const std::string& text, size_t flags = 0) {
  json_t* j = json_loadb(text.data(), text.size(), flags, nullptr);
  if (!j) return false;
  json_decref(j);
  return true;
}

bool is_own_key(const std::string& key) {
  static const char* const own[] = {"x-ch-auth-email", "x-ch-auth-token", "x-ch-auth-api-token",
                                    "sid", "version", "instance", "proto", "device-ip",
                                    "device-port", "proxy-ip", "proxy-port", "session-id",
                                    "counter-up", "counter-down"};
  for (const char* k : own)
    if (key == k) return true;
  return false;
}

// The Data call's metadata: ours first, unchanged; then only usable keys.
void check_data_metadata(const ControlAnswer& answer) {
  DataCallInfo call;
  call.device = *Endpoint::parse("10.250.15.1:65411");
  call.local = *Endpoint::parse("127.0.0.1:179");
  call.session_id = "cbce1788-bb34-4c2c-8056-5b3224d4e893";
  call.counter_up = 3;
  call.counter_down = 5;
  call.control_metadata = &answer.metadata;
  std::vector<std::string> skipped;
  Metadata md = data_metadata(agent(), call, &skipped);
  constexpr size_t kOwn = 14;
  FUZZ_CHECK(md.size() >= kOwn);
  FUZZ_CHECK(md[1].first == "x-ch-auth-token" && md[1].second == kToken);
  FUZZ_CHECK(md[7].second == "10.250.15.1");
  size_t offered = 0;
  for (const auto& kv : answer.metadata) offered += kv.values.size();
  FUZZ_CHECK(md.size() - kOwn <= offered);
  for (size_t i = kOwn; i < md.size(); ++i) {
    FUZZ_CHECK(valid_metadata_key(md[i].first));
    FUZZ_CHECK(valid_metadata_value(md[i].first, md[i].second));
    FUZZ_CHECK(!is_own_key(md[i].first));
  }
  // Shown by the admin (it must fit the slot and stay JSON) and logged
  // without the token.
  std::string shown = server_metadata_json(md, sizeof(shm::SessionSlot::metadata_json) - 1);
  FUZZ_CHECK(shown.size() < sizeof(shm::SessionSlot::metadata_json));
  FUZZ_CHECK(shown.empty() || valid_json(shown));
  std::string logged = redacted_metadata_json(md, kToken);
  FUZZ_CHECK(valid_json(logged));
  FUZZ_CHECK(logged.find(kToken) == std::string::npos);
}

// Equal for equal metadata, different otherwise (every part is
// length-prefixed).
std::string metadata_identity(const std::vector<KeyValues>& metadata) {
  std::string id;
  auto add = [&id](const std::string& part) {
    id += std::to_string(part.size());
    id += ':';
    id += part;
  };
  for (const auto& kv : metadata) {
    add(kv.key);
    id += std::to_string(kv.values.size());
    id += ';';
    for (const auto& value : kv.values) add(value);
  }
  return id;
}

void check_log_line(const ControlAnswer& answer) {
  std::string line = log::format_line(log::Level::Info, "Control update pushed by the backend",
                                      {{"device_ip", answer.device_ip},
                                       {"device", answer.device_label()},
                                       {"action", answer.blocked() ? "BLOCK_IP" : "UNSPECIFIED"},
                                       {"ttl_seconds", answer.ttl_seconds}},
                                      1690304485'409183151);
  FUZZ_CHECK(valid_json(line, JSON_ALLOW_NUL));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  log::init("uplink", log::Level::Off, log::Format::Json);
  // protobuf logs every string field that is not valid UTF-8 to stderr
  // (the parse fails either way); nothing here reads that text.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  ControlCache cache(7);
  std::vector<ipc::InstallMd5Key> sent;
  Md5Relay::Hooks hooks;
  hooks.send = [&sent](const void* msg, size_t len) {
    FUZZ_CHECK(len == sizeof(ipc::InstallMd5Key));
    sent.push_back(*static_cast<const ipc::InstallMd5Key*>(msg));
    return true;
  };
  hooks.post = [](std::function<void()> task) { task(); };
  // No lookups are made here, so no ControlClient is needed.
  auto relay = std::make_shared<Md5Relay>(true, nullptr, hooks);
  int64_t now = 1000 * kSecond;
  // The metadata and admin checks depend only on the answer's metadata and
  // the log check only on the record, so each is made once per distinct
  // value in this input: they cost ~0.6 ms under ASan, and mutated inputs
  // are mostly runs of records without metadata, often identical.
  std::set<std::string> metadata_checked;
  std::set<std::string_view> logged;

  while (!in.empty()) {
    uint8_t step = in.u8();
    std::string_view bytes = in.record();
    now += (step & 0x0f) * kSecond;
    pb::ControlResponse response;
    if (!response.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      continue;  // gRPC ends the stream on a message it cannot parse
    if (response.action() == pb::CONTROL_ACTION_KEEPALIVE) continue;  // contents ignored

    ControlAnswer answer = answer_from_response(response);
    FUZZ_CHECK(answer.blocked() == (response.action() == pb::CONTROL_ACTION_BLOCK_IP));
    FUZZ_CHECK(answer.metadata.size() == static_cast<size_t>(response.metadata_size()));
    FUZZ_CHECK(answer.device_ip == response.device_ip());

    // The cache: a ttl of 0 is never served; a served answer is this one.
    cache.put(answer, now);
    auto served = cache.use(answer.proto, answer.device_ip, now);
    FUZZ_CHECK(served.has_value() == (answer.ttl_seconds != 0));
    if (served) {
      FUZZ_CHECK(served->verdict == answer.verdict && served->device_name == answer.device_name &&
                 served->ttl_counter == answer.ttl_counter);
      auto again = cache.use(answer.proto, answer.device_ip, now);
      FUZZ_CHECK(again.has_value() == (answer.ttl_counter != 1));
      // Past its ttl it is gone.
      FUZZ_CHECK(!cache.use(answer.proto, answer.device_ip,
                            now + static_cast<int64_t>(answer.ttl_seconds) * kSecond));
    }
    if (step & 0x10) cache.drop(answer.proto, answer.device_ip);
    cache.expire(now);
    FUZZ_CHECK(cache.next_expiry() > now);

    if (metadata_checked.insert(metadata_identity(answer.metadata)).second)
      check_data_metadata(answer);
    if (logged.insert(bytes).second) check_log_line(answer);

    // The key's way to the supervisor, as the Control client hands it on.
    KeyNotice notice;
    notice.device_ip = answer.device_ip;
    notice.verdict = answer.verdict;
    notice.ttl_seconds = answer.ttl_seconds;
    notice.device_id = answer.device_id;
    notice.pushed = (step & 0x20) != 0;
    notice.tcp_md5 = response.tcp_md5();
    sent.clear();
    relay->on_key_notice(notice);
    FUZZ_CHECK(notice.tcp_md5.empty());  // wiped
    FUZZ_CHECK(sent.size() <= 1);
    auto device = Endpoint::parse_address(answer.device_ip);
    if (!device) FUZZ_CHECK(sent.empty());
    for (const auto& msg : sent) {
      FUZZ_CHECK(msg.header.length == sizeof msg);
      FUZZ_CHECK(msg.key_length <= ipc::kMd5MaxKeyLength);
      FUZZ_CHECK(msg.device.same_address(device->unmapped()));
      auto op = static_cast<ipc::Md5KeyOp>(msg.op);
      if (op == ipc::Md5KeyOp::Install) {
        FUZZ_CHECK(!answer.blocked());
        FUZZ_CHECK(msg.key_length >= 1);
        FUZZ_CHECK(std::string_view(reinterpret_cast<const char*>(msg.key), msg.key_length) ==
                   response.tcp_md5());
      } else {
        FUZZ_CHECK(msg.key_length == 0);
        FUZZ_CHECK(op == (answer.blocked() ? ipc::Md5KeyOp::Blocked : ipc::Md5KeyOp::NoKey));
      }
    }
    bool installable = device && !answer.blocked() && !response.tcp_md5().empty() &&
                       response.tcp_md5().size() <= ipc::kMd5MaxKeyLength;
    if (installable)
      FUZZ_CHECK(sent.size() == 1 && sent[0].op == static_cast<uint32_t>(ipc::Md5KeyOp::Install));
  }
  return 0;
}
