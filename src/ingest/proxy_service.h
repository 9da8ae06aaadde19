// The ProxyService callback implementation: authenticates and checks each
// call on the gRPC thread that starts it, then hands it to a loop-thread
// handler (ControlStream / DataStream) through a LoopReactor.
#pragma once

#include "ingest/backend.h"
#include "kentik/ktbgp/v202203beta2/proxy.grpc.pb.h"

namespace kbgp::ingest {

namespace pb = kentik::ktbgp::v202203beta2;

class ProxyServiceImpl final : public pb::ProxyService::CallbackService {
 public:
  explicit ProxyServiceImpl(Backend& backend) : backend_(backend) {}

  grpc::ServerBidiReactor<pb::ControlRequest, pb::ControlResponse>* Control(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerBidiReactor<pb::DataRequest, pb::DataResponse>* Data(
      grpc::CallbackServerContext* ctx) override;

  // Loop thread: asks every attached Data stream for a graceful RESTART.
  void restart_all_data_streams();
  // Loop thread: the registry was reloaded (SIGHUP); Control streams push
  // the TCP-MD5 keys that changed.
  void registry_reloaded();
  // Loop thread: ends every session (closing its collector connection and
  // its Data stream) and every Control stream, for a prompt shutdown.
  void close_everything();

 private:
  Backend& backend_;
};

}  // namespace kbgp::ingest
