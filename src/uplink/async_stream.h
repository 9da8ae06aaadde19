// A client bidi-streaming call on a StreamQueue (gRPC's completion-queue
// API), driven by an owner (a Session for Data, the ControlClient for
// Control). Every completion reaches the owner on the queue's thread; the
// owner keeps the state under its own mutex and calls write(), read(),
// writes_done(), cancel() and let_go() back while holding it, from any
// thread.
//
// gRPC's rules this class keeps so the owner need not:
// - StartCall sends the initial metadata with the same operation set a
//   Write uses, so a write or half-close asked before the start completed
//   is held and issued from the start's completion.
// - The call ends (on_stream_done) only after let_go(): then Finish is
//   issued, and the status is delivered once every operation, Finish
//   included, has completed. The owner must start no operation after
//   let_go().
//
// Lifetime: the stream owns itself (self_) from start() until it delivered
// the status; owners hold a shared_ptr, the stream only a weak_ptr to its
// owner, so an owner torn down first is harmless. No raw new.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "uplink/channel_pool.h"
#include "uplink/stream_queue.h"
#include "uplink/live_streams.h"
#include "uplink/metadata.h"

namespace kbgp::uplink {

template <typename Request, typename Response>
class AsyncStream final {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    virtual void on_stream_metadata(AsyncStream& stream, bool ok) = 0;
    virtual void on_stream_read(AsyncStream& stream, bool ok) = 0;
    virtual void on_stream_write(AsyncStream& stream, bool ok) = 0;
    virtual void on_stream_done(AsyncStream& stream, const grpc::Status& status) = 0;
  };
  using Call = grpc::ClientAsyncReaderWriter<Request, Response>;
  // Prepares the RPC without starting it: e.g. stub->PrepareCall(context, kDataMethod, cq).
  using Prepare =
      std::function<std::unique_ptr<Call>(grpc::ClientContext*, grpc::CompletionQueue*)>;

  // Call with the owner's lock held, so no completion reaches the owner
  // before it has stored the returned pointer.
  static std::shared_ptr<AsyncStream> start(std::weak_ptr<Owner> owner, const Metadata& metadata,
                                            StreamQueue& queue, const Prepare& prepare,
                                            ChannelLease lease = {}) {
    auto stream = std::make_shared<AsyncStream>(Key{}, std::move(owner), std::move(lease));
    for (const auto& [key, value] : metadata) stream->context_.AddMetadata(key, value);
    stream->self_ = stream;
    stream->call_ = prepare(&stream->context_, queue.cq());
    stream->pending_ = 2;  // start and initial metadata
    stream->call_->StartCall(&stream->start_op_);
    stream->call_->ReadInitialMetadata(&stream->metadata_op_);
    return stream;
  }

  struct Key {};  // only start() constructs
  AsyncStream(Key, std::weak_ptr<Owner> owner, ChannelLease lease)
      : owner_(std::move(owner)), lease_(std::move(lease)) {}

  // The message for the next write / the last message read. Touch only
  // while no write / read is outstanding.
  Request& outgoing() { return out_; }
  Response& incoming() { return in_; }
  void write() { start_write(Deferred::Write); }
  void writes_done() { start_write(Deferred::WritesDone); }
  void read() {
    count_pending();
    call_->Read(&in_, &read_op_);
  }
  void cancel() { context_.TryCancel(); }
  // Asks for the status (once): on_stream_done follows as soon as nothing
  // else is outstanding.
  void let_go() {
    {
      // Together with the count, so no completion sees "let go" with the
      // Finish not counted yet.
      std::lock_guard lock(mu_);
      if (let_go_.load()) return;
      let_go_.store(true);
      ++pending_;
    }
    call_->Finish(&status_, &finish_op_);
  }
  bool let_go_done() const { return let_go_.load(); }
  // Valid after on_stream_metadata(ok = true).
  Metadata server_metadata() const {
    Metadata md;
    for (const auto& [k, v] : context_.GetServerInitialMetadata())
      md.emplace_back(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
    return md;
  }
  uint64_t connection_id() const { return lease_.connection_id(); }

 private:
  enum class Deferred { None, Write, WritesDone };
  enum class OpKind { Start, Metadata, Read, Write, WritesDone, Finish };

  class Op final : public QueuedOp {
   public:
    Op(AsyncStream* stream, OpKind kind) : stream_(stream), kind_(kind) {}
    void complete(bool ok) override { stream_->completed(kind_, ok); }

   private:
    AsyncStream* stream_;
    OpKind kind_;
  };

  void count_pending() {
    std::lock_guard lock(mu_);
    ++pending_;
  }

  void start_write(Deferred what) {
    {
      std::lock_guard lock(mu_);
      ++pending_;
      if (!started_) {
        deferred_ = what;
        return;
      }
    }
    issue(what);
  }

  void issue(Deferred what) {
    if (what == Deferred::Write)
      call_->Write(out_, &write_op_);
    else if (what == Deferred::WritesDone)
      call_->WritesDone(&writes_done_op_);
  }

  void completed(OpKind kind, bool ok) {
    switch (kind) {
      case OpKind::Start: {
        Deferred what;
        {
          std::lock_guard lock(mu_);
          started_ = true;
          what = std::exchange(deferred_, Deferred::None);
        }
        issue(what);  // on a call that failed to start, it fails too
        break;
      }
      case OpKind::Metadata:
        to_owner(&Owner::on_stream_metadata, ok);
        break;
      case OpKind::Read:
        to_owner(&Owner::on_stream_read, ok);
        break;
      case OpKind::Write:
        to_owner(&Owner::on_stream_write, ok);
        break;
      case OpKind::WritesDone:
      case OpKind::Finish:
        break;
    }
    // Counted down after the owner's reaction, which may have started the
    // next operation or let go.
    bool done;
    {
      std::lock_guard lock(mu_);
      done = --pending_ == 0 && let_go_.load();
    }
    if (done) finished();
  }

  // Hands a completion to the owner, or ends a call whose owner is gone.
  void to_owner(void (Owner::*reaction)(AsyncStream&, bool), bool ok) {
    if (auto owner = owner_.lock())
      ((*owner).*reaction)(*this, ok);
    else
      orphaned();
  }

  void finished() {
    // Give the connection slot back before the owner possibly opens a new
    // stream (a resume) so packing sees the true count.
    lease_.release();
    if (auto owner = owner_.lock()) owner->on_stream_done(*this, status_);
    auto self = std::move(self_);  // may destroy *this on return: nothing after
  }

  // The owner is gone: end the call so its status comes and frees us.
  void orphaned() {
    cancel();
    let_go();
  }

  LiveStream live_;  // first member: counted until the ClientContext is gone
  std::weak_ptr<Owner> owner_;
  ChannelLease lease_;
  grpc::ClientContext context_;
  std::unique_ptr<Call> call_;  // after context_: destroyed before it
  Request out_;
  Response in_;
  grpc::Status status_;
  Op start_op_{this, OpKind::Start};
  Op metadata_op_{this, OpKind::Metadata};
  Op read_op_{this, OpKind::Read};
  Op write_op_{this, OpKind::Write};
  Op writes_done_op_{this, OpKind::WritesDone};
  Op finish_op_{this, OpKind::Finish};
  std::mutex mu_;
  int pending_ = 0;  // operations issued or deferred and not completed
  bool started_ = false;
  Deferred deferred_ = Deferred::None;
  std::atomic<bool> let_go_{false};
  std::shared_ptr<AsyncStream> self_;
};

}  // namespace kbgp::uplink
