// A client bidi-streaming call (gRPC callback API) driven by an owner.
//
// The reactor is deliberately dumb: it holds the call's buffers and forwards
// every reaction to its owner (a Session for Data, the ControlClient for
// Control), which keeps the state under its own mutex and calls write(),
// read(), writes_done(), cancel() and let_go() back while holding it.
//
// Lifetime: the reactor owns itself (self_) from start() until OnDone, the
// only point after which gRPC no longer touches it; owners hold a shared_ptr
// and the reactor holds only a weak_ptr to its owner, so an owner torn down
// first (or an OnDone racing the owner's teardown) is harmless. No raw new.
//
// Holds: start() takes a hold before StartCall because the owner starts
// reads and writes from outside reactions (its event thread); OnDone cannot
// fire until let_go() removes it. After let_go() the owner must start no
// further operation.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_callback.h>

#include <atomic>
#include <functional>
#include <memory>

#include "uplink/channel_pool.h"
#include "uplink/metadata.h"

namespace kbgp::uplink {

// Reactors still waiting for OnDone, across all streams: the uplink waits
// for zero before destroying channels at exit.
inline std::atomic<int> g_live_reactors{0};

template <typename Request, typename Response>
class BidiStream final : public grpc::ClientBidiReactor<Request, Response> {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    virtual void on_stream_metadata(BidiStream& stream, bool ok) = 0;
    virtual void on_stream_read(BidiStream& stream, bool ok) = 0;
    virtual void on_stream_write(BidiStream& stream, bool ok) = 0;
    virtual void on_stream_done(BidiStream& stream, const grpc::Status& status) = 0;
  };
  // Starts the RPC: e.g. stub->async()->Data(context, reactor).
  using Launch = std::function<void(grpc::ClientContext*, grpc::ClientBidiReactor<Request, Response>*)>;

  // Call with the owner's lock held, so no reaction reaches the owner before
  // it has stored the returned pointer.
  static std::shared_ptr<BidiStream> start(std::weak_ptr<Owner> owner, const Metadata& metadata,
                                           const Launch& launch, ChannelLease lease = {}) {
    auto stream = std::make_shared<BidiStream>(Key{}, std::move(owner), std::move(lease));
    for (const auto& [key, value] : metadata) stream->context_.AddMetadata(key, value);
    stream->self_ = stream;
    launch(&stream->context_, stream.get());
    stream->AddHold();
    stream->StartCall();
    return stream;
  }

  struct Key {};  // only start() constructs
  BidiStream(Key, std::weak_ptr<Owner> owner, ChannelLease lease)
      : owner_(std::move(owner)), lease_(std::move(lease)) {}

  // The message for the next write / the last message read. Touch only
  // while no write / read is outstanding.
  Request& outgoing() { return out_; }
  Response& incoming() { return in_; }
  void write() { this->StartWrite(&out_); }
  void read() { this->StartRead(&in_); }
  void writes_done() { this->StartWritesDone(); }
  void cancel() { context_.TryCancel(); }
  // Removes the hold (once): OnDone may follow as soon as nothing is
  // outstanding.
  void let_go() {
    if (!let_go_.exchange(true)) this->RemoveHold();
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
  void OnReadInitialMetadataDone(bool ok) override {
    if (auto owner = owner_.lock())
      owner->on_stream_metadata(*this, ok);
    else
      orphaned();
  }
  void OnReadDone(bool ok) override {
    if (auto owner = owner_.lock())
      owner->on_stream_read(*this, ok);
    else
      orphaned();
  }
  void OnWriteDone(bool ok) override {
    if (auto owner = owner_.lock())
      owner->on_stream_write(*this, ok);
    else
      orphaned();
  }
  void OnWritesDoneDone(bool ok) override {}
  void OnDone(const grpc::Status& status) override {
    // Give the connection slot back before the owner possibly opens a new
    // stream (a resume) so packing sees the true count.
    lease_.release();
    if (auto owner = owner_.lock()) owner->on_stream_done(*this, status);
    auto self = std::move(self_);  // may destroy *this on return: nothing after
  }
  // The owner is gone: end the call so OnDone can run and free us.
  void orphaned() {
    cancel();
    let_go();
  }

  // Counts this reactor from construction to the end of its destruction
  // (first member, so destroyed last, after the ClientContext).
  struct LiveCount {
    LiveCount() { g_live_reactors.fetch_add(1, std::memory_order_relaxed); }
    ~LiveCount() { g_live_reactors.fetch_sub(1, std::memory_order_release); }
  };
  LiveCount live_;
  std::weak_ptr<Owner> owner_;
  ChannelLease lease_;
  grpc::ClientContext context_;
  Request out_;
  Response in_;
  std::atomic<bool> let_go_{false};
  std::shared_ptr<BidiStream> self_;
};

}  // namespace kbgp::uplink
