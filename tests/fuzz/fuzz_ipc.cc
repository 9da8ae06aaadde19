// libFuzzer target: the typed messages between supervisor and workers
// (common/ipc.h). Any bytes with any number of descriptors go through a
// real SOCK_SEQPACKET pair into recv_msg(), on the supervisor's side (a
// named sender) or a worker's. Checks: what is accepted has the exact
// length, version and fd count of its type and a sender allowed to send
// it; what is refused carries no fds; no descriptor is ever leaked (none in
// /proc/self/fd refers to the pipe passed once the message is handled); the
// address fields the receivers log render whatever bytes they hold.
//
// Input: a byte choosing the side (0-2: the supervisor receiving from the
// listener, uplink or admin; 3-5: that worker receiving from the
// supervisor), a byte with the number of fds to pass (0-4), the message.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/endpoint.h"
#include "common/fd.h"
#include "common/ipc.h"
#include "fuzz_input.h"

using namespace kbgp;

namespace {

struct Channel {
  UniqueFd sender, receiver;
  Channel() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) __builtin_trap();
    sender.reset(fds[0]);
    receiver.reset(fds[1]);
    // Big enough for a message beyond the receiver's buffer (truncation).
    int size = 1 << 17;
    ::setsockopt(sender.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(receiver.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
};

// The descriptor in this process that refers to the file `target`
// (st_dev/st_ino), or -1. Why not only "writing to the pipe fails with
// EPIPE": that also fails when any other process holds the read end, and
// CI once failed there (crash-ipc AAAEOwABAED/AAA=, no fds passed) with
// nothing in this process to point at; this check names the leaked fd.
int fd_referring_to(const struct stat& target) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) __builtin_trap();
  int found = -1;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    int fd = std::atoi(entry->d_name);
    if (fd == ::dirfd(dir)) continue;
    struct stat st{};
    if (::fstat(fd, &st) == 0 && st.st_dev == target.st_dev && st.st_ino == target.st_ino) {
      found = fd;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

void render(const Endpoint& e) {
  Endpoint u = e.unmapped();
  (void)u.address_string();
  (void)u.to_string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Channel channel;
  fuzz::Input in(data, size);
  uint8_t side = in.u8() % 6;
  size_t nfds = in.u8() % 5;
  std::string_view message = in.rest();
  if (message.size() > 70000) return 0;

  auto kind = static_cast<shm::WorkerKind>(side % 3);
  bool supervisor_side = side < 3;
  // The fds passed are the read end of a pipe: once the message is handled
  // no descriptor in this process may refer to that pipe any more.
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) __builtin_trap();
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  struct stat pipe_stat{};
  if (::fstat(read_end.get(), &pipe_stat) != 0) __builtin_trap();
  int fds[4] = {read_end.get(), read_end.get(), read_end.get(), read_end.get()};
  bool sent = ipc::send_msg(channel.sender.get(), message.data(), message.size(), fds, nfds);
  read_end.reset();
  if (!sent) {
    FUZZ_CHECK(message.size() > 4096);
    return 0;
  }
  {
    ipc::Received got =
        ipc::recv_msg(channel.receiver.get(), supervisor_side ? &kind : nullptr, kind);
    if (message.empty()) {
      // A zero-length datagram reads as end of stream.
      FUZZ_CHECK(got.status == ipc::Received::Status::Closed);
    } else if (got.status == ipc::Received::Status::Ok) {
      ipc::MsgHeader h{};
      FUZZ_CHECK(message.size() >= sizeof h);
      std::memcpy(&h, message.data(), sizeof h);
      auto type = static_cast<ipc::MsgType>(h.type);
      FUZZ_CHECK(got.type() == type);
      FUZZ_CHECK(h.version == ipc::kProtocolVersion);
      FUZZ_CHECK(ipc::expected_length(type) == message.size() && h.length == message.size());
      FUZZ_CHECK(got.bytes.size() == message.size() &&
                 std::memcmp(got.bytes.data(), message.data(), message.size()) == 0);
      FUZZ_CHECK(static_cast<int>(got.fds.size()) == ipc::fd_count(type, kind));
      if (supervisor_side) FUZZ_CHECK(ipc::may_send(kind, type));
      for (const auto& fd : got.fds) FUZZ_CHECK(fd.get() >= 0);
      // What the receivers log or act on.
      switch (type) {
        case ipc::MsgType::AddSession:
          render(got.as<ipc::AddSession>().device);
          render(got.as<ipc::AddSession>().local);
          break;
        case ipc::MsgType::DenyDevice: render(got.as<ipc::DenyDevice>().device); break;
        case ipc::MsgType::AllowDevice: render(got.as<ipc::AllowDevice>().device); break;
        case ipc::MsgType::InstallMd5Key: render(got.as<ipc::InstallMd5Key>().device); break;
        case ipc::MsgType::Md5Lookup:
          render(got.as<ipc::Md5Lookup>().device);
          render(got.as<ipc::Md5Lookup>().local);
          break;
        case ipc::MsgType::SessionDone:
          FUZZ_CHECK(ipc::session_end_name(
                         static_cast<ipc::SessionEnd>(got.as<ipc::SessionDone>().reason)) !=
                     nullptr);
          break;
        default: break;
      }
    } else {
      FUZZ_CHECK(got.status == ipc::Received::Status::Invalid);
      FUZZ_CHECK(!got.error.empty());
      FUZZ_CHECK(got.fds.empty());
    }
  }
  // Every received descriptor is closed again: with the write end closed
  // too, no descriptor in this process may refer to the pipe. (A copy left
  // in flight in the socket would shift every later message by one, which
  // the first accepted message then shows as a mismatch.)
  write_end.reset();
  int leaked = fd_referring_to(pipe_stat);
  if (leaked >= 0) fprintf(stderr, "fd %d still refers to the pipe passed\n", leaked);
  FUZZ_CHECK(leaked < 0);
  return 0;
}

