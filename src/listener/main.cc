// kbgp-listener: the unprivileged worker that owns the device side of every
// session. Started by the supervisor (fork + exec) with the descriptors of
// src/common/ipc.h; see docs/architecture.md.
#include <event2/event.h>

#include <memory>
#include <string>

#include "common/ipc.h"
#include "common/log.h"
#include "common/sandbox.h"
#include "common/test_trigger.h"
#include "common/worker.h"
#include "listener/sandbox_policy.h"
#include "listener/listener.h"

namespace {
struct EventBaseDeleter {
  void operator()(event_base* base) const { event_base_free(base); }
};
}  // namespace

int main() {
  auto ctx = kbgp::worker_bootstrap(kbgp::shm::WorkerKind::Listener, true);
  if (!ctx) return 1;
  std::unique_ptr<event_base, EventBaseDeleter> base(event_base_new());
  if (!base) {
    kbgp::log::error("cannot create the event loop");
    return 1;
  }
  {
    kbgp::listener::Listener listener(base.get(), *ctx, kbgp::ipc::kUpReadyFd,
                                      kbgp::ipc::kDownReadyFd);
    if (!listener.start()) return 1;
    // From here on the worker only serves: drop what is left of privilege
    // and confine it before it reads any input from outside.
#ifdef KBGP_TEST_TRIGGERS
    kbgp::test_trigger::arm(kbgp::shm::WorkerKind::Listener);
#endif
    std::string sandbox_error;
    if (!kbgp::drop_worker_privileges(&sandbox_error) ||
        !kbgp::install_seccomp(kbgp::listener::sandbox_policy(), &sandbox_error)) {
      kbgp::log::error("cannot confine the listener", {{"error", sandbox_error}});
      return 1;
    }
    if (!ctx->send_ready()) {
      kbgp::log::error("cannot tell the supervisor the listener is ready");
      return 1;
    }
    kbgp::log::info("listener ready");
    listener.run();
  }  // sessions and their events go before the loop they belong to
  kbgp::log::info("listener stopped");
  return 0;
}
