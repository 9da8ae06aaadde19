// The completion queue that drives every stream of the uplink (Control and
// Data), and the one thread that waits on it.
//
// Why not gRPC's callback API: with callbacks, gRPC reads and decrypts on
// its own poller threads ("nexting_thread") and runs each reaction on
// another, so every batch crossed two or three threads; the profile of a
// full table showed a third of the uplink's time in thread switches and
// futex waits. A thread that waits in CompletionQueue::Next also polls the
// connections, so here one thread receives, runs the session's reaction,
// and starts (serialises, frames and encrypts) the next write inline, as a
// TLS tunnel does. Using the callback API anywhere in the process would
// start gRPC's poller threads again, which then take the reads from us.
#pragma once

#include <grpcpp/grpcpp.h>

#include <thread>

namespace kbgp::uplink {

// One kind of operation on one stream; its address is the queue tag.
class QueuedOp {
 public:
  virtual void complete(bool ok) = 0;

 protected:
  ~QueuedOp() = default;
};

class StreamQueue {
 public:
  StreamQueue();
  // Shuts the queue down and joins the thread. Every call on the queue
  // must have finished (no operation outstanding) before.
  ~StreamQueue();
  StreamQueue(const StreamQueue&) = delete;
  StreamQueue& operator=(const StreamQueue&) = delete;

  grpc::CompletionQueue* cq() { return &cq_; }

 private:
  void run();

  grpc::CompletionQueue cq_;
  std::thread thread_;
};

}  // namespace kbgp::uplink
