// The wire interface must stay exactly the published ProxyService: package,
// service, method paths, message and field names and numbers, enum values.
#include <catch2/catch.hpp>

#include "kentik/ktbgp/v202203beta2/proxy.grpc.pb.h"

namespace pb = kentik::ktbgp::v202203beta2;
using google::protobuf::Descriptor;

namespace {
void check_field(const Descriptor* d, const char* name, int number) {
  INFO(d->full_name() << "." << name);
  const auto* f = d->FindFieldByName(name);
  REQUIRE(f != nullptr);
  CHECK(f->number() == number);
}
}  // namespace

TEST_CASE("service and method paths are the published ones") {
  const auto* service = pb::DataRequest::descriptor()->file()->FindServiceByName("ProxyService");
  REQUIRE(service != nullptr);
  CHECK(service->full_name() == "kentik.ktbgp.v202203beta2.ProxyService");
  CHECK(std::string(pb::ProxyService::service_full_name()) == service->full_name());
  REQUIRE(service->method_count() == 2);
  const auto* control = service->FindMethodByName("Control");
  const auto* data = service->FindMethodByName("Data");
  REQUIRE(control);
  REQUIRE(data);
  CHECK(control->client_streaming());
  CHECK(control->server_streaming());
  CHECK(data->client_streaming());
  CHECK(data->server_streaming());
  CHECK(control->input_type()->full_name() == "kentik.ktbgp.v202203beta2.ControlRequest");
  CHECK(control->output_type()->full_name() == "kentik.ktbgp.v202203beta2.ControlResponse");
  CHECK(data->input_type()->full_name() == "kentik.ktbgp.v202203beta2.DataRequest");
  CHECK(data->output_type()->full_name() == "kentik.ktbgp.v202203beta2.DataResponse");
  // The generated stub uses these literal paths on the wire.
  CHECK(std::string("/") + service->full_name() + "/" + control->name() ==
        "/kentik.ktbgp.v202203beta2.ProxyService/Control");
  CHECK(std::string("/") + service->full_name() + "/" + data->name() ==
        "/kentik.ktbgp.v202203beta2.ProxyService/Data");
}

TEST_CASE("field numbers are the published ones") {
  const auto* req = pb::ControlRequest::descriptor();
  CHECK(req->field_count() == 6);
  check_field(req, "proto", 1);
  check_field(req, "device_ip", 2);
  check_field(req, "device_port", 3);
  check_field(req, "proxy_ip", 4);
  check_field(req, "proxy_port", 5);
  check_field(req, "action", 8);

  const auto* resp = pb::ControlResponse::descriptor();
  CHECK(resp->field_count() == 13);
  const char* names[] = {"proto",       "device_ip",   "device_port", "proxy_ip", "proxy_port",
                         "ttl_seconds", "ttl_counter", "action",      "metadata", "company_id",
                         "device_id",   "device_name", "tcp_md5"};
  for (int i = 0; i < 13; ++i) check_field(resp, names[i], i + 1);

  check_field(pb::KeyVal::descriptor(), "key", 1);
  check_field(pb::KeyVal::descriptor(), "val", 2);
  CHECK(pb::KeyVal::descriptor()->FindFieldByName("val")->is_repeated());
  for (const Descriptor* d : {pb::DataRequest::descriptor(), pb::DataResponse::descriptor()}) {
    CHECK(d->field_count() == 2);
    check_field(d, "action", 1);
    check_field(d, "data", 2);
    CHECK(d->FindFieldByName("data")->is_repeated());
  }
}

TEST_CASE("enum values are the published ones") {
  CHECK(pb::CONTROL_ACTION_UNSPECIFIED == 0);
  CHECK(pb::CONTROL_ACTION_BLOCK_IP == 1);
  CHECK(pb::CONTROL_ACTION_KEEPALIVE == 2);
  CHECK(pb::DATA_ACTION_UNSPECIFIED == 0);
  CHECK(pb::DATA_ACTION_KILL == 1);
  CHECK(pb::DATA_ACTION_RESTART == 2);
  CHECK(pb::ControlAction_descriptor()->full_name() == "kentik.ktbgp.v202203beta2.ControlAction");
  CHECK(pb::DataAction_descriptor()->full_name() == "kentik.ktbgp.v202203beta2.DataAction");
}

TEST_CASE("messages serialise to the expected bytes and back") {
  pb::DataRequest req;
  req.set_action(pb::DATA_ACTION_KILL);
  req.add_data("ab");
  std::string wire = req.SerializeAsString();
  CHECK(wire == std::string("\x08\x01\x12\x02" "ab", 6));

  pb::ControlResponse resp;
  resp.set_device_ip("10.0.0.1");
  resp.set_ttl_seconds(1200);
  resp.set_action(pb::CONTROL_ACTION_BLOCK_IP);
  resp.set_tcp_md5("k");
  auto* kv = resp.add_metadata();
  kv->set_key("backend-pin");
  kv->add_val("42b0e9c9");
  std::string bytes = resp.SerializeAsString();
  // tcp_md5 is field 13, wire type 2: tag 0x6a.
  CHECK(bytes.find(std::string("\x6a\x01k", 3)) != std::string::npos);
  // ttl_seconds is field 6, varint: tag 0x30, 1200 = 0xb0 0x09.
  CHECK(bytes.find(std::string("\x30\xb0\x09", 3)) != std::string::npos);
  pb::ControlResponse back;
  REQUIRE(back.ParseFromString(bytes));
  CHECK(back.metadata(0).val(0) == "42b0e9c9");
  CHECK(back.action() == pb::CONTROL_ACTION_BLOCK_IP);
}
