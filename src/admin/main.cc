// kbgp-admin: the unprivileged worker that serves the status API and the
// Prometheus metrics from a read-only view of the control region. Started by
// the supervisor (fork + exec) with the descriptors of src/common/ipc.h; it
// opens no socket itself (fd 7 is bound and listening already).
#include <event2/event.h>

#include <memory>
#include <string>

#include "admin/sandbox_policy.h"
#include "admin/http_server.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/sandbox.h"
#include "common/test_trigger.h"
#include "common/worker.h"

namespace {
struct EventBaseDeleter {
  void operator()(event_base* base) const { event_base_free(base); }
};
}  // namespace

int main() {
  auto ctx = kbgp::worker_bootstrap(kbgp::shm::WorkerKind::Admin, false);
  if (!ctx) return 1;
  std::unique_ptr<event_base, EventBaseDeleter> base(event_base_new());
  if (!base) {
    kbgp::log::error("cannot create the event loop");
    return 1;
  }
  {
    kbgp::admin::AdminServer server(base.get(), *ctx, kbgp::ipc::kAdminSocketFd);
    if (!server.start()) return 1;
    // From here on the worker only serves: drop what is left of privilege
    // and confine it before it reads any input from outside.
#ifdef KBGP_TEST_TRIGGERS
    kbgp::test_trigger::arm(kbgp::shm::WorkerKind::Admin);
#endif
    std::string sandbox_error;
    if (!kbgp::drop_worker_privileges(&sandbox_error) ||
        !kbgp::install_seccomp(kbgp::admin::sandbox_policy(), &sandbox_error)) {
      kbgp::log::error("cannot confine the admin", {{"error", sandbox_error}});
      return 1;
    }
    if (!ctx->send_ready()) {
      kbgp::log::error("cannot tell the supervisor the admin is ready");
      return 1;
    }
    kbgp::log::info("admin ready");
    server.run();
  }
  kbgp::log::info("admin stopped");
  return 0;
}
