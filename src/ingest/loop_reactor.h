// Bridges a gRPC server bidi stream to a handler that lives on the event
// loop thread. gRPC calls the reactions on its own threads; each one is
// posted to the loop, so a handler sees its stream's events one at a time,
// in order, on the same thread as the collector sockets and timers.
//
// Ownership: CallbackService methods return `new LoopReactor(...)`; that is
// the callback API's own model (the library keeps the pointer until OnDone,
// and the reactor deletes itself there). The handler holds a plain pointer
// that it must drop when it calls finish(): OnDone can only follow Finish.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ingest/event_loop.h"

namespace kbgp::ingest {

// Implemented by a loop-thread handler.
template <typename Request>
class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  // ok=false: the client half-closed, or the stream broke (check cancelled()).
  virtual void on_read_done(bool ok, Request request) = 0;
  virtual void on_write_done(bool ok) = 0;
  virtual void on_cancel() = 0;
};

template <typename Request, typename Response>
class LoopReactor final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  LoopReactor(grpc::CallbackServerContext* ctx, EventLoop& loop,
              std::shared_ptr<StreamEvents<Request>> events)
      : ctx_(ctx), loop_(loop), events_(std::move(events)) {}

  // ---- loop thread, before the handler's finish() ----
  void read() { this->StartRead(&in_); }
  // One write at a time: the caller waits for on_write_done.
  void write(Response msg) {
    out_ = std::move(msg);
    this->StartWrite(&out_);
  }
  void send_initial_metadata(const std::vector<std::pair<std::string, std::string>>& md) {
    for (const auto& [k, v] : md) ctx_->AddInitialMetadata(k, v);
    this->StartSendInitialMetadata();
  }
  // After this call the reactor may be gone at any moment.
  void finish(grpc::Status status) { this->Finish(std::move(status)); }
  bool cancelled() const { return ctx_->IsCancelled(); }

 private:
  void OnReadDone(bool ok) override {
    auto msg = std::make_shared<Request>();
    if (ok) msg->Swap(&in_);
    loop_.post([ev = events_, ok, msg] { ev->on_read_done(ok, std::move(*msg)); });
  }
  void OnWriteDone(bool ok) override {
    loop_.post([ev = events_, ok] { ev->on_write_done(ok); });
  }
  void OnCancel() override {
    loop_.post([ev = events_] { ev->on_cancel(); });
  }
  void OnDone() override {
    // Release the handler on the loop thread, where its state lives.
    loop_.post([ev = std::move(events_)] {});
    delete this;  // the callback API's ownership model (see the file comment)
  }

  grpc::CallbackServerContext* ctx_;
  EventLoop& loop_;
  std::shared_ptr<StreamEvents<Request>> events_;
  Request in_;
  Response out_;
};

// A call refused before any work: finishes at once with `status`.
template <typename Request, typename Response>
class RefusedCall final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedCall(grpc::Status status) { this->Finish(std::move(status)); }

 private:
  void OnDone() override { delete this; }  // callback API ownership model
};

}  // namespace kbgp::ingest
