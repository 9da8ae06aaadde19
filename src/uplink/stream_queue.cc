#include "uplink/stream_queue.h"

namespace kbgp::uplink {

StreamQueue::StreamQueue() : thread_([this] { run(); }) {}

StreamQueue::~StreamQueue() {
  cq_.Shutdown();
  thread_.join();
}

void StreamQueue::run() {
  void* tag = nullptr;
  bool ok = false;
  // Next returns false once the queue is shut down and drained.
  while (cq_.Next(&tag, &ok)) static_cast<QueuedOp*>(tag)->complete(ok);
}

}  // namespace kbgp::uplink
