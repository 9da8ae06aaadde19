// Typed messages between the supervisor and its workers.
//
// Each worker has one SOCK_SEQPACKET socketpair to the supervisor (fd 3 in
// the worker). A message is one fixed-size struct that starts with MsgHeader;
// file descriptors travel beside it with SCM_RIGHTS. The receiver checks,
// before it trusts anything: the exact length for the type, the number of
// fds the type carries, and that the sending worker kind may send that type
// at all (may_send). Anything else is a protocol violation: the message is
// dropped, its fds closed, and the caller told why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/endpoint.h"
#include "common/fd.h"
#include "common/layout.h"

namespace kbgp::ipc {

// Well-known descriptor numbers in every worker.
constexpr int kChannelFd = 3;        // SOCK_SEQPACKET to the supervisor
constexpr int kControlRegionFd = 4;  // ControlRegion memfd (read-only for admin)
constexpr int kUpReadyFd = 5;        // eventfd: listener -> uplink
constexpr int kDownReadyFd = 6;      // eventfd: uplink -> listener
constexpr int kAdminSocketFd = 7;    // admin only: bound, listening HTTP socket
constexpr int kLogRingFd = 8;        // the log ring memfd (common/log_ring.h), read-write;
                                     // absent when log export is off

enum class MsgType : uint16_t {
  WorkerInit = 1,    // supervisor -> any worker, first message
  UplinkInit = 2,    // supervisor -> uplink, after WorkerInit (secrets; fd: the
                     // CA file opened by the supervisor, or an empty memfd)
  AddSession = 3,    // supervisor -> listener (fds: socket, memfd), -> uplink (fd: memfd)
  SessionDone = 4,   // listener/uplink -> supervisor: worker let go of a session
  DenyDevice = 5,    // uplink -> supervisor: deny-list a device address
  Ready = 6,         // worker -> supervisor: initialised, serving
  Shutdown = 7,      // supervisor -> worker: finish and exit
  Heartbeat = 8,     // admin -> supervisor: the admin maps the control region
                     // read-only, so the supervisor records its heartbeat
  SyscallViolation = 9,  // any worker -> supervisor, from its SIGSYS handler
                         // just before it dies: which call seccomp refused
  AllowDevice = 10,  // uplink -> supervisor: lift a device's deny (the backend
                     // pushed an answer that accepts it)
  InstallMd5Key = 11,  // uplink -> supervisor: a device's TCP-MD5 key (or that it
                       // has none now), from a Control answer
  Md5Lookup = 12,      // supervisor -> uplink: a signed SYN came from a device
                       // without a key: ask Control about it
  SetLogLevel = 13,    // supervisor -> any worker: log at this level from now on
                       // (SIGHUP re-read the environment file)
};

// 2: InstallMd5Key, Md5Lookup. 3: SetLogLevel.
constexpr uint16_t kProtocolVersion = 3;

struct MsgHeader {
  uint16_t type;     // MsgType
  uint16_t version;  // kProtocolVersion
  uint32_t length;   // sizeof the whole message struct
};

enum class LogFormat : uint8_t { Json = 0, Human = 1 };

struct WorkerInit {
  MsgHeader header;
  uint8_t log_level;  // spdlog::level::level_enum value
  uint8_t log_format;  // LogFormat
  uint8_t pad[2];
  uint32_t worker_kind;  // shm::WorkerKind being started
};

struct UplinkInit {
  MsgHeader header;
  char target[256];     // host:port of the backend
  char api_email[256];
  char api_token[512];
  char ca_file[256];    // path of the PEM roots, for messages; the contents come
                        // as the message's fd (the workers' user may not be
                        // able to open the file itself)
  char tls_server_name[256];  // override for the TLS name check; empty = host of target
  uint32_t site_id;
  uint32_t multi;
  uint32_t insecure;    // 1 = plaintext
  uint32_t log_export;  // 1 = drain the log ring (fd 8) and export it
  char log_export_url[512];      // docs/export.md
  char metrics_export_url[512];
};

enum class SessionEnd : uint32_t {
  DeviceClosed = 1,     // device sent FIN and everything was relayed
  DeviceError = 2,      // read/write error or RST from the device
  FramingError = 3,     // malformed BGP framing from the device
  BackendClosed = 4,    // backend finished the Data stream
  BackendKilled = 5,    // DATA_ACTION_KILL from the backend
  Denied = 6,           // Control answered BLOCK_IP
  UplinkError = 7,      // Data stream failed and could not be resumed
  Invalid = 8,          // the region or message was unusable
};

struct AddSession {
  MsgHeader header;
  uint32_t slot;
  uint32_t generation;
  uint8_t session_id[16];
  Endpoint device;
  Endpoint local;
  int64_t accepted_ns;
};

struct SessionDone {
  MsgHeader header;
  uint32_t slot;
  uint32_t generation;
  uint32_t reason;  // SessionEnd
  uint32_t pad;
};

struct DenyDevice {
  MsgHeader header;
  Endpoint device;        // only the address counts
  uint32_t ttl_seconds;
  uint32_t ttl_counter;
  uint32_t slot;          // the session that triggered it (for the log line)
  uint32_t generation;
};

struct AllowDevice {
  MsgHeader header;
  Endpoint device;  // only the address counts
};

struct Ready {
  MsgHeader header;
};

// Only the supervisor changes a worker's log level: with the level in shared
// memory, any worker could silence the others' logs.
struct SetLogLevel {
  MsgHeader header;
  uint8_t log_level;  // log::Level
  uint8_t pad[7];
};

struct Shutdown {
  MsgHeader header;
};

struct Heartbeat {
  MsgHeader header;
};

// TCP-MD5 (--enable-md5-support). A key lives in the uplink only in
// transit and in the supervisor, which installs it on the listening sockets:
// never in shared memory, the listener, the admin or a log line.
constexpr uint32_t kMd5MaxKeyLength = 80;  // TCP_MD5SIG_MAXKEYLEN

enum class Md5KeyOp : uint32_t {
  Install = 1,     // key[0..key_length) is the device's key from now on
  NoKey = 2,       // the backend knows the device and has no key for it
  Blocked = 3,     // the backend answered BLOCK_IP for it
  Unanswered = 4,  // only with answers_lookup: the lookup got no answer
};

struct InstallMd5Key {
  MsgHeader header;
  Endpoint device;          // only the address counts
  uint32_t op;              // Md5KeyOp
  uint32_t answers_lookup;  // 1: the answer to the supervisor's Md5Lookup
  uint32_t ttl_seconds;     // ControlResponse.ttl_seconds: how long to keep it
  uint32_t device_id;       // for log lines
  uint32_t key_length;      // 1..kMd5MaxKeyLength with Install, else 0
  uint8_t key[kMd5MaxKeyLength];
};

struct Md5Lookup {
  MsgHeader header;
  Endpoint device;  // source of the captured SYN
  Endpoint local;   // where it was going (our listener)
};

// Sent by common/sandbox.cc's SIGSYS handler, then the worker dies of SIGSYS.
// Only a hint for the log line about that death: the supervisor prints the
// call's name from its own table, never text from the worker.
struct SyscallViolation {
  MsgHeader header;
  int32_t syscall;  // siginfo si_syscall
  uint32_t arch;    // siginfo si_arch (AUDIT_ARCH_*)
};

// How many fds a type carries; -1 for a type that never travels.
int fd_count(MsgType type, shm::WorkerKind receiver_or_sender);
// True when a worker of `kind` may send `type` to the supervisor.
bool may_send(shm::WorkerKind kind, MsgType type);
// Expected struct size of a type, 0 for an unknown type.
size_t expected_length(MsgType type);

template <typename T>
T make(MsgType type) {
  T msg{};
  msg.header.type = static_cast<uint16_t>(type);
  msg.header.version = kProtocolVersion;
  msg.header.length = sizeof(T);
  return msg;
}

// Sends one message with optional fds. Returns false and sets errno on error.
bool send_msg(int sock, const void* msg, size_t len, const int* fds = nullptr,
              size_t nfds = 0);

struct Received {
  enum class Status { Ok, Closed, Again, Invalid } status = Status::Invalid;
  std::vector<uint8_t> bytes;
  std::vector<UniqueFd> fds;
  std::string error;  // for Invalid
  MsgType type() const;
  template <typename T>
  const T& as() const { return *reinterpret_cast<const T*>(bytes.data()); }
};

// Receives one message (non-blocking if the socket is). Validation: version,
// length and fd count for the type, and, if `sender` is given (the supervisor
// receiving from a worker), may_send().
Received recv_msg(int sock, const shm::WorkerKind* sender,
                  shm::WorkerKind receiver);

const char* session_end_name(SessionEnd reason);
const char* worker_name(shm::WorkerKind kind);

}  // namespace kbgp::ipc
