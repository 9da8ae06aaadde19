#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "common/ipc.h"
#include "common/log.h"
#include "common/worker.h"

using namespace kbgp;

namespace {
struct Pair {
  UniqueFd a, b;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};
}  // namespace

TEST_CASE("a typed message and its fds cross a seqpacket socket") {
  Pair p;
  auto msg = ipc::make<ipc::AddSession>(ipc::MsgType::AddSession);
  msg.slot = 42;
  msg.generation = 7;
  int pipefds[2];
  REQUIRE(::pipe2(pipefds, O_CLOEXEC) == 0);
  UniqueFd r(pipefds[0]), w(pipefds[1]);
  int fds[1] = {r.get()};
  REQUIRE(ipc::send_msg(p.a.get(), &msg, sizeof msg, fds, 1));
  auto got = ipc::recv_msg(p.b.get(), nullptr, shm::WorkerKind::Uplink);
  REQUIRE(got.status == ipc::Received::Status::Ok);
  CHECK(got.type() == ipc::MsgType::AddSession);
  CHECK(got.as<ipc::AddSession>().slot == 42);
  REQUIRE(got.fds.size() == 1);
  REQUIRE(::write(w.get(), "x", 1) == 1);
  char c = 0;
  CHECK(::read(got.fds[0].get(), &c, 1) == 1);
  CHECK(c == 'x');
}

TEST_CASE("the wrong number of fds is refused and the fds are closed") {
  Pair p;
  auto msg = ipc::make<ipc::AddSession>(ipc::MsgType::AddSession);
  int fds[1] = {p.a.get()};
  REQUIRE(ipc::send_msg(p.a.get(), &msg, sizeof msg, fds, 1));
  // A listener must get two fds (socket + memfd).
  auto got = ipc::recv_msg(p.b.get(), nullptr, shm::WorkerKind::Listener);
  CHECK(got.status == ipc::Received::Status::Invalid);
  CHECK(got.fds.empty());
}

TEST_CASE("a worker may only send the types meant for it") {
  Pair p;
  auto deny = ipc::make<ipc::DenyDevice>(ipc::MsgType::DenyDevice);
  REQUIRE(ipc::send_msg(p.a.get(), &deny, sizeof deny));
  auto listener = shm::WorkerKind::Listener;
  auto got = ipc::recv_msg(p.b.get(), &listener, shm::WorkerKind::Listener);
  CHECK(got.status == ipc::Received::Status::Invalid);

  REQUIRE(ipc::send_msg(p.a.get(), &deny, sizeof deny));
  auto uplink = shm::WorkerKind::Uplink;
  CHECK(ipc::recv_msg(p.b.get(), &uplink, shm::WorkerKind::Uplink).status ==
        ipc::Received::Status::Ok);

  auto add = ipc::make<ipc::AddSession>(ipc::MsgType::AddSession);
  REQUIRE(ipc::send_msg(p.a.get(), &add, sizeof add));
  CHECK(ipc::recv_msg(p.b.get(), &uplink, shm::WorkerKind::Uplink).status ==
        ipc::Received::Status::Invalid);
}

TEST_CASE("wrong length, version or type is refused") {
  Pair p;
  auto msg = ipc::make<ipc::SessionDone>(ipc::MsgType::SessionDone);
  auto listener = shm::WorkerKind::Listener;
  REQUIRE(ipc::send_msg(p.a.get(), &msg, sizeof msg - 4));
  CHECK(ipc::recv_msg(p.b.get(), &listener, listener).status == ipc::Received::Status::Invalid);
  msg.header.version = 9;
  REQUIRE(ipc::send_msg(p.a.get(), &msg, sizeof msg));
  CHECK(ipc::recv_msg(p.b.get(), &listener, listener).status == ipc::Received::Status::Invalid);
  msg.header.version = ipc::kProtocolVersion;
  msg.header.type = 999;
  REQUIRE(ipc::send_msg(p.a.get(), &msg, sizeof msg));
  CHECK(ipc::recv_msg(p.b.get(), &listener, listener).status == ipc::Received::Status::Invalid);
  uint8_t tiny[2] = {1, 0};
  REQUIRE(ipc::send_msg(p.a.get(), tiny, sizeof tiny));
  CHECK(ipc::recv_msg(p.b.get(), &listener, listener).status == ipc::Received::Status::Invalid);
  CHECK(ipc::recv_msg(p.b.get(), &listener, listener).status == ipc::Received::Status::Again);
  p.a.reset();
  CHECK(ipc::recv_msg(p.b.get(), &listener, listener).status == ipc::Received::Status::Closed);
}

// Found by tests/fuzz/fuzz_ipc.cc (corpus/ipc/zero-length-with-fd): a
// zero-length message reads like the end of the stream, and its fds were
// left open in the receiver.
TEST_CASE("a zero-length message with an fd reads as closed and leaks no fd") {
  Pair p;
  int pipefds[2];
  REQUIRE(::pipe2(pipefds, O_CLOEXEC) == 0);
  UniqueFd r(pipefds[0]), w(pipefds[1]);
  int fds[1] = {r.get()};
  REQUIRE(ipc::send_msg(p.a.get(), "", 0, fds, 1));
  r.reset();  // only the copy in flight keeps the pipe's read end open now
  auto listener = shm::WorkerKind::Listener;
  auto got = ipc::recv_msg(p.b.get(), &listener, listener);
  CHECK(got.status == ipc::Received::Status::Closed);
  CHECK(got.fds.empty());
  // No read end is left anywhere: writing to the pipe fails with EPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  CHECK(::write(w.get(), "x", 1) == -1);
  CHECK(errno == EPIPE);
}

TEST_CASE("SetLogLevel: from the supervisor only; every worker applies it") {
  Pair p;
  auto msg = ipc::make<ipc::SetLogLevel>(ipc::MsgType::SetLogLevel);
  msg.log_level = static_cast<uint8_t>(log::Level::Debug);
  // A worker sending it to the supervisor: refused (no worker may change
  // another's level).
  REQUIRE(ipc::send_msg(p.a.get(), &msg, sizeof msg));
  for (auto kind : {shm::WorkerKind::Listener, shm::WorkerKind::Uplink, shm::WorkerKind::Admin}) {
    CHECK_FALSE(ipc::may_send(kind, ipc::MsgType::SetLogLevel));
  }
  auto listener = shm::WorkerKind::Listener;
  CHECK(ipc::recv_msg(p.b.get(), &listener, shm::WorkerKind::Listener).status ==
        ipc::Received::Status::Invalid);
  // The supervisor sending it: each worker takes it in handle_common_message.
  log::Level before = log::level();
  REQUIRE(ipc::send_msg(p.a.get(), &msg, sizeof msg));
  auto got = ipc::recv_msg(p.b.get(), nullptr, shm::WorkerKind::Admin);
  REQUIRE(got.status == ipc::Received::Status::Ok);
  CHECK(handle_common_message(got));
  CHECK(log::level() == log::Level::Debug);
  // Out of range: kept.
  msg.log_level = 200;
  REQUIRE(ipc::send_msg(p.a.get(), &msg, sizeof msg));
  auto bad = ipc::recv_msg(p.b.get(), nullptr, shm::WorkerKind::Uplink);
  REQUIRE(bad.status == ipc::Received::Status::Ok);
  CHECK(handle_common_message(bad));
  CHECK(log::level() == log::Level::Debug);
  // Other types are the worker's own.
  auto ready = ipc::make<ipc::Shutdown>(ipc::MsgType::Shutdown);
  REQUIRE(ipc::send_msg(p.a.get(), &ready, sizeof ready));
  auto other = ipc::recv_msg(p.b.get(), nullptr, shm::WorkerKind::Uplink);
  REQUIRE(other.status == ipc::Received::Status::Ok);
  CHECK_FALSE(handle_common_message(other));
  log::set_level(before);
}
