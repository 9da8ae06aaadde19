#include "ingest/proxy_service.h"

#include "common/log.h"
#include "ingest/call_auth.h"
#include "ingest/control_stream.h"
#include "ingest/data_stream.h"
#include "ingest/session.h"

namespace kbgp::ingest {

namespace {

grpc::StatusCode status_code(Refusal r) {
  switch (r) {
    case Refusal::None: return grpc::StatusCode::OK;
    case Refusal::Unauthenticated: return grpc::StatusCode::UNAUTHENTICATED;
    case Refusal::InvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case Refusal::FailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case Refusal::PermissionDenied: return grpc::StatusCode::PERMISSION_DENIED;
  }
  return grpc::StatusCode::INTERNAL;
}

const grpc::Status kBadCredentials(grpc::StatusCode::UNAUTHENTICATED,
                                   "bad or missing credentials (x-ch-auth-email, x-ch-auth-token)");

}  // namespace

grpc::ServerBidiReactor<pb::ControlRequest, pb::ControlResponse>* ProxyServiceImpl::Control(
    grpc::CallbackServerContext* ctx) {
  using Refused = RefusedCall<pb::ControlRequest, pb::ControlResponse>;
  // Each `new` below hands a reactor to gRPC, which owns it until OnDone,
  // where it deletes itself (the callback API's ownership model).
  std::string email;
  if (!authenticate(*ctx, *backend_.config.credentials(), "Control", &email)) {
    return new Refused(kBadCredentials);
  }
  std::string error;
  auto site = parse_site(metadata_lookup(*ctx), &error);
  if (!site) {
    log::warn("refused Control stream", {{"reason", error}, {"peer", ctx->peer()}});
    return new Refused(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, error));
  }
  auto handler = std::make_shared<ControlStream>(backend_, email, ctx->peer(), *site);
  auto* reactor = new ControlStream::Reactor(ctx, backend_.loop, handler);
  backend_.loop.post([handler, reactor] { handler->open(reactor); });
  return reactor;
}

grpc::ServerBidiReactor<pb::DataRequest, pb::DataResponse>* ProxyServiceImpl::Data(
    grpc::CallbackServerContext* ctx) {
  using Refused = RefusedCall<pb::DataRequest, pb::DataResponse>;
  // As in Control(): gRPC owns each returned reactor until its OnDone.
  std::string email;
  if (!authenticate(*ctx, *backend_.config.credentials(), "Data", &email)) {
    return new Refused(kBadCredentials);
  }
  DataCallCheck check = check_data_call(metadata_lookup(*ctx), backend_.backend_pin);
  if (check.refusal != Refusal::None) {
    log::warn("refused Data stream",
              {{"reason", check.message}, {"peer", ctx->peer()}, {"email", email}});
    return new Refused(grpc::Status(status_code(check.refusal), check.message));
  }
  const DataCallParams& p = check.params;
  auto registry = backend_.config.registry();
  const Device* device = registry->find(p.device, p.site);
  if (!device) {
    log::info("unknown device, refused Data stream", {{"device_ip", p.device.address_string()},
                                                     {"site", p.site},
                                                     {"session_id", p.session_id},
                                                     {"peer", ctx->peer()},
                                                     {"email", email}});
    return new Refused(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                    "device " + p.device.address_string() +
                                        " is not in this backend's registry"));
  }
  auto handler = std::make_shared<DataStream>(backend_, p, *device, email, ctx->peer());
  auto* reactor = new DataStream::Reactor(ctx, backend_.loop, handler);
  backend_.loop.post([handler, reactor] { handler->open(reactor); });
  return reactor;
}

void ProxyServiceImpl::restart_all_data_streams() {
  size_t count = 0;
  backend_.sessions.for_each([&count](Session& s) {
    if (SessionStream* stream = s.stream()) {
      stream->restart_requested();
      ++count;
    }
  });
  log::info("SIGUSR1: asked every Data stream to restart", {{"streams", count}});
}

void ProxyServiceImpl::registry_reloaded() {
  auto controls = backend_.control_streams;  // a push may finish a stream
  for (ControlStream* c : controls) c->registry_reloaded();
}

void ProxyServiceImpl::close_everything() {
  backend_.sessions.end_all("backend shutting down");
  auto controls = backend_.control_streams;  // shut_down() erases from the set
  for (ControlStream* c : controls) c->shut_down();
}

}  // namespace kbgp::ingest
