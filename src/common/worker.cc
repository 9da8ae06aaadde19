#include "common/worker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include "common/log.h"
#include "common/log_ring.h"
#include "common/timeutil.h"

namespace kbgp {

void WorkerContext::heartbeat() const {
  status().heartbeat_mono_ns.store(monotonic_ns(), std::memory_order_relaxed);
}

bool WorkerContext::send_ready() const {
  auto msg = ipc::make<ipc::Ready>(ipc::MsgType::Ready);
  return ipc::send_msg(channel.get(), &msg, sizeof msg);
}

std::optional<WorkerContext> worker_bootstrap(shm::WorkerKind kind, bool writable_control) {
  // If the supervisor dies, so do we: an orphaned worker would hold device
  // sockets open with nobody left to account for them.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() == 1) return std::nullopt;  // supervisor already gone

  // Load the time zone once now: glibc's gmtime_r (libevent's HTTP Date
  // header) reads /etc/localtime on first use, which seccomp forbids later.
  ::tzset();
  WorkerContext ctx;
  ctx.kind = kind;
  ctx.channel = UniqueFd(ipc::kChannelFd);
  log::init(ipc::worker_name(kind), log::Level::Info, log::Format::Json);

  pollfd pfd{ipc::kChannelFd, POLLIN, 0};
  int ready = ::poll(&pfd, 1, 10000);
  if (ready != 1) {
    log::error("no init message from the supervisor");
    return std::nullopt;
  }
  auto msg = ipc::recv_msg(ipc::kChannelFd, nullptr, kind);
  if (msg.status != ipc::Received::Status::Ok || msg.type() != ipc::MsgType::WorkerInit) {
    log::error("bad init message from the supervisor", {{"error", msg.error}});
    return std::nullopt;
  }
  const auto& init = msg.as<ipc::WorkerInit>();
  if (init.worker_kind != static_cast<uint32_t>(kind)) {
    log::error("init message is for another worker kind");
    return std::nullopt;
  }
  auto level = init.log_level <= static_cast<uint8_t>(log::Level::Off)
                   ? static_cast<log::Level>(init.log_level)
                   : log::Level::Info;
  auto format = init.log_format == static_cast<uint8_t>(ipc::LogFormat::Human) ? log::Format::Human
                                                                               : log::Format::Json;
  log::init(ipc::worker_name(kind), level, format);
  // Log export on: our lines also go into the shared log ring. The mapping
  // stays; the descriptor is not needed any more.
  logring::attach_fd(ipc::kLogRingFd);
  ::close(ipc::kLogRingFd);

  long long size = fd_size(ipc::kControlRegionFd);
  if (size < static_cast<long long>(shm::kControlRegionSize)) {
    log::error("control region missing or too small", {{"size", size}});
    return std::nullopt;
  }
  ctx.control_map = SharedMapping::map(ipc::kControlRegionFd, static_cast<size_t>(size),
                                       writable_control);
  if (!ctx.control_map) {
    log::error("cannot map the control region", {{"error", std::strerror(errno)}});
    return std::nullopt;
  }
  ctx.control = ctx.control_map.as<shm::ControlRegion>();
  if (!shm::valid_control(ctx.control, ctx.control_map.size())) {
    log::error("control region has an unknown layout version",
               {{"version", ctx.control->header.version}, {"expected", shm::kLayoutVersion}});
    return std::nullopt;
  }
  ::close(ipc::kControlRegionFd);  // the mapping keeps it alive
  if (writable_control) ctx.heartbeat();
  return ctx;
}

bool handle_common_message(const ipc::Received& msg) {
  if (msg.type() != ipc::MsgType::SetLogLevel) return false;
  uint8_t wanted = msg.as<ipc::SetLogLevel>().log_level;
  if (wanted > static_cast<uint8_t>(log::Level::Off)) {
    log::warn("log level from the supervisor out of range; kept", {{"log-level", wanted}});
    return true;
  }
  auto level = static_cast<log::Level>(wanted);
  log::Level before = log::level();
  // Said at info while either level shows it, so lowering the level is
  // seen too.
  if (before <= log::Level::Info) log::info("log level changed", {{"from", log::level_name(before)},
                                                                  {"to", log::level_name(level)}});
  log::set_level(level);
  if (before > log::Level::Info) log::info("log level changed", {{"from", log::level_name(before)},
                                                                 {"to", log::level_name(level)}});
  return true;
}

void eventfd_signal(int fd) {
  uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(fd, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
}

void eventfd_drain(int fd) {
  uint64_t value;
  ssize_t n;
  do {
    n = ::read(fd, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
}

}  // namespace kbgp
