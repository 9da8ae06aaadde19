// AsyncStream + StreamQueue (src/uplink/async_stream.h, stream_queue.h)
// against a real in-process gRPC server on loopback: the contract the
// Session and the ControlClient rely on.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kentik/ktbgp/v202203beta2/proxy.grpc.pb.h"
#include "uplink/async_stream.h"
#include "uplink/wire_request.h"
#include "uplink/stream_queue.h"

namespace pb = kentik::ktbgp::v202203beta2;
using kbgp::uplink::AsyncStream;
using kbgp::uplink::StreamQueue;
// As the uplink's Data streams: requests serialised by WireDataRequest,
// the call made through the generic stub by the method's name.
using Stream = AsyncStream<kbgp::uplink::WireDataRequest, pb::DataResponse>;
using namespace std::chrono_literals;

namespace {

// Echoes each DataRequest's data back, with initial metadata; or, when the
// client sends "mode: refuse", ends the call at once as a backend refusing
// credentials does (no headers: a trailers-only response).
class EchoReactor final : public grpc::ServerBidiReactor<pb::DataRequest, pb::DataResponse> {
 public:
  EchoReactor(grpc::CallbackServerContext* ctx, bool refuse) {
    if (refuse) {
      Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "refused by the test"));
      return;
    }
    ctx->AddInitialMetadata("counter-up", "0");
    StartSendInitialMetadata();
    StartRead(&in_);
  }

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);  // the client half-closed (or went away)
      return;
    }
    out_.Clear();
    for (const auto& d : in_.data()) out_.add_data(d);
    StartWrite(&out_);
  }
  void OnWriteDone(bool ok) override {
    if (ok) StartRead(&in_);
  }
  // The callback API's ownership model: gRPC holds the reactor until here.
  void OnDone() override { delete this; }

  pb::DataRequest in_;
  pb::DataResponse out_;
};

class EchoService final : public pb::ProxyService::CallbackService {
  grpc::ServerBidiReactor<pb::DataRequest, pb::DataResponse>* Data(
      grpc::CallbackServerContext* ctx) override {
    bool refuse = false;
    for (const auto& [k, v] : ctx->client_metadata())
      if (k == "mode" && v == "refuse") refuse = true;
    return new EchoReactor(ctx, refuse);  // freed in OnDone (callback API)
  }
};

struct Server {
  Server() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(server);
    REQUIRE(port > 0);
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
    stub = std::make_unique<kbgp::uplink::DataStub>(channel);
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now() + 2s); }
  EchoService service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<kbgp::uplink::DataStub> stub;
};

// Records every reaction; reads on while reads succeed, lets go when one
// fails, like the Session does.
class Recorder final : public Stream::Owner {
 public:
  void on_stream_metadata(Stream& stream, bool ok) override {
    std::lock_guard lock(mu);
    metadata_ok = ok;
    metadata = stream.server_metadata();
    metadata_seen = true;
    cv.notify_all();
  }
  void on_stream_read(Stream& stream, bool ok) override {
    std::lock_guard lock(mu);
    if (!ok) {
      read_failed = true;
      stream.let_go();
    } else {
      for (const auto& d : stream.incoming().data()) echoed.push_back(d);
      stream.read();
    }
    cv.notify_all();
  }
  void on_stream_write(Stream&, bool ok) override {
    std::lock_guard lock(mu);
    writes.push_back(ok);
    cv.notify_all();
  }
  void on_stream_done(Stream&, const grpc::Status& s) override {
    std::lock_guard lock(mu);
    ++done;
    status = s;
    cv.notify_all();
  }
  template <typename Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, pred);
  }

  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<Stream> stream;
  bool metadata_seen = false, metadata_ok = false, read_failed = false;
  kbgp::uplink::Metadata metadata;
  std::vector<std::string> echoed;
  std::vector<bool> writes;
  int done = 0;
  grpc::Status status;
};

std::shared_ptr<Stream> start(Server& server, StreamQueue& queue,
                              const std::shared_ptr<Recorder>& owner,
                              const kbgp::uplink::Metadata& md) {
  return Stream::start(owner, md, queue, [&](grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
    return server.stub->PrepareCall(ctx, kbgp::uplink::kDataMethod, cq);
  });
}

bool no_live_streams() {
  for (int i = 0; i < 1000; ++i) {
    if (kbgp::uplink::g_live_streams.load() == 0) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

}  // namespace

TEST_CASE("AsyncStream: a write asked for at once goes out; the status comes once, after let_go") {
  Server server;
  StreamQueue queue;
  auto owner = std::make_shared<Recorder>();
  {
    std::lock_guard lock(owner->mu);
    owner->stream = start(server, queue, owner, {{"mode", "echo"}});
    // Before the call's start can have completed (the queue's thread waits
    // for our lock to deliver anything): held until it has.
    owner->stream->outgoing().set(0, "hello");
    owner->stream->write();
    owner->stream->read();
  }
  // Completions of different operations come in any order: the echo may
  // be read before the write's completion is delivered.
  REQUIRE(owner->wait([&] { return owner->echoed.size() == 1 && owner->writes.size() == 1; }));
  CHECK(owner->echoed[0] == "hello");
  CHECK(owner->writes == std::vector<bool>{true});
  CHECK(owner->metadata_ok);
  CHECK(owner->metadata == kbgp::uplink::Metadata{{"counter-up", "0"}});
  {
    std::lock_guard lock(owner->mu);
    owner->stream->writes_done();  // only with no write outstanding (gRPC's rule)
  }
  REQUIRE(owner->wait([&] { return owner->done > 0; }));
  CHECK(owner->read_failed);
  CHECK(owner->status.ok());
  std::this_thread::sleep_for(50ms);
  CHECK(owner->done == 1);
  owner->stream.reset();
  CHECK(no_live_streams());
}

TEST_CASE("AsyncStream: a refused call reports empty metadata as received, then its status") {
  // Why a Session judges empty metadata only after a grace period and the
  // ControlClient does not count it as connected (async_stream.h).
  Server server;
  StreamQueue queue;
  auto owner = std::make_shared<Recorder>();
  {
    std::lock_guard lock(owner->mu);
    owner->stream = start(server, queue, owner, {{"mode", "refuse"}});
    owner->stream->read();
  }
  REQUIRE(owner->wait([&] { return owner->done > 0; }));
  CHECK(owner->metadata_seen);
  CHECK(owner->metadata.empty());
  CHECK(owner->read_failed);
  CHECK(owner->status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(owner->status.error_message() == "refused by the test");
  owner->stream.reset();
  CHECK(no_live_streams());
}

TEST_CASE("AsyncStream: a stream whose owner is gone ends itself") {
  Server server;
  StreamQueue queue;
  auto owner = std::make_shared<Recorder>();
  {
    std::lock_guard lock(owner->mu);
    owner->stream = start(server, queue, owner, {{"mode", "echo"}});
    owner->stream->outgoing().set(0, "x");
    owner->stream->write();
  }
  REQUIRE(owner->wait([&] { return owner->writes.size() == 1 && owner->metadata_seen; }));
  // The owner goes away with the call open; then a read: the echo
  // completes it, the stream finds no owner, cancels and lets go.
  std::shared_ptr<Stream> stream;
  {
    std::lock_guard lock(owner->mu);
    stream = std::move(owner->stream);
  }
  owner.reset();
  stream->read();
  stream.reset();
  CHECK(no_live_streams());
}
