#include "common/ipc.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace kbgp::ipc {

namespace {
constexpr size_t kMaxFds = 4;
constexpr size_t kMaxMessage = 4096;  // UplinkInit is ~2.6 KiB
}  // namespace

size_t expected_length(MsgType type) {
  switch (type) {
    case MsgType::WorkerInit: return sizeof(WorkerInit);
    case MsgType::UplinkInit: return sizeof(UplinkInit);
    case MsgType::AddSession: return sizeof(AddSession);
    case MsgType::SessionDone: return sizeof(SessionDone);
    case MsgType::DenyDevice: return sizeof(DenyDevice);
    case MsgType::Ready: return sizeof(Ready);
    case MsgType::Shutdown: return sizeof(Shutdown);
    case MsgType::Heartbeat: return sizeof(Heartbeat);
    case MsgType::SyscallViolation: return sizeof(SyscallViolation);
    case MsgType::AllowDevice: return sizeof(AllowDevice);
    case MsgType::InstallMd5Key: return sizeof(InstallMd5Key);
    case MsgType::Md5Lookup: return sizeof(Md5Lookup);
    case MsgType::SetLogLevel: return sizeof(SetLogLevel);
  }
  return 0;
}

int fd_count(MsgType type, shm::WorkerKind worker) {
  if (type == MsgType::AddSession) {
    if (worker == shm::WorkerKind::Listener) return 2;  // socket, session memfd
    if (worker == shm::WorkerKind::Uplink) return 1;    // session memfd
    return -1;
  }
  if (type == MsgType::UplinkInit) return worker == shm::WorkerKind::Uplink ? 1 : -1;
  return expected_length(type) ? 0 : -1;
}

bool may_send(shm::WorkerKind kind, MsgType type) {
  switch (type) {
    case MsgType::Ready:
    case MsgType::SyscallViolation:
      return true;
    case MsgType::SessionDone:
      return kind == shm::WorkerKind::Listener || kind == shm::WorkerKind::Uplink;
    case MsgType::DenyDevice:
    case MsgType::AllowDevice:
    case MsgType::InstallMd5Key:  // keys come from Control; never the listener
      return kind == shm::WorkerKind::Uplink;
    case MsgType::Heartbeat:
      return kind == shm::WorkerKind::Admin;
    default:
      return false;  // everything else flows from the supervisor only
  }
}

bool send_msg(int sock, const void* msg, size_t len, const int* fds, size_t nfds) {
  iovec iov{const_cast<void*>(msg), len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (nfds > kMaxFds) {
    errno = EINVAL;
    return false;
  }
  if (nfds) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = ::sendmsg(sock, &mh, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(len)) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n >= 0) errno = EMSGSIZE;
    return false;
  }
}

MsgType Received::type() const {
  MsgHeader h{};
  std::memcpy(&h, bytes.data(), sizeof h);
  return static_cast<MsgType>(h.type);
}

Received recv_msg(int sock, const shm::WorkerKind* sender, shm::WorkerKind receiver) {
  Received out;
  uint8_t buf[kMaxMessage];
  iovec iov{buf, sizeof buf};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    out.status = Received::Status::Again;
    return out;
  }
  if (n < 0) {
    out.status = Received::Status::Closed;
    out.error = std::strerror(errno);
    return out;
  }
  // Take ownership of every fd first, so a rejected message leaks none:
  // also one that came with a zero-length message, which reads like the end
  // of the stream (tests/fuzz/fuzz_ipc.cc found that leak).
  for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
        out.fds.emplace_back(fd);
      }
    }
  }
  if (n == 0) {
    out.fds.clear();
    out.status = Received::Status::Closed;
    return out;
  }
  auto invalid = [&](const std::string& why) {
    out.status = Received::Status::Invalid;
    out.error = why;
    out.fds.clear();
    return std::move(out);
  };
  if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return invalid("message or fds truncated");
  if (static_cast<size_t>(n) < sizeof(MsgHeader)) return invalid("short message");
  MsgHeader h{};
  std::memcpy(&h, buf, sizeof h);
  auto type = static_cast<MsgType>(h.type);
  size_t want = expected_length(type);
  if (want == 0) return invalid("unknown message type " + std::to_string(h.type));
  if (h.version != kProtocolVersion)
    return invalid("protocol version " + std::to_string(h.version));
  if (h.length != want || static_cast<size_t>(n) != want)
    return invalid("bad length " + std::to_string(n) + " for type " + std::to_string(h.type));
  shm::WorkerKind fd_side = sender ? *sender : receiver;
  if (sender && !may_send(*sender, type))
    return invalid(std::string(worker_name(*sender)) + " may not send type " +
                   std::to_string(h.type));
  int fds = fd_count(type, fd_side);
  if (fds < 0 || out.fds.size() != static_cast<size_t>(fds))
    return invalid("wrong number of fds (" + std::to_string(out.fds.size()) + ") for type " +
                   std::to_string(h.type));
  out.bytes.assign(buf, buf + n);
  out.status = Received::Status::Ok;
  return out;
}

const char* session_end_name(SessionEnd reason) {
  switch (reason) {
    case SessionEnd::DeviceClosed: return "device-closed";
    case SessionEnd::DeviceError: return "device-error";
    case SessionEnd::FramingError: return "framing-error";
    case SessionEnd::BackendClosed: return "backend-closed";
    case SessionEnd::BackendKilled: return "backend-killed";
    case SessionEnd::Denied: return "denied";
    case SessionEnd::UplinkError: return "uplink-error";
    case SessionEnd::Invalid: return "invalid";
  }
  return "unknown";
}

const char* worker_name(shm::WorkerKind kind) {
  switch (kind) {
    case shm::WorkerKind::Listener: return "listener";
    case shm::WorkerKind::Uplink: return "uplink";
    case shm::WorkerKind::Admin: return "admin";
  }
  return "unknown";
}

}  // namespace kbgp::ipc
