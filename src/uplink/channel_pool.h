// The Data connections: each gRPC channel (one HTTP/2 connection) carries up
// to `multi` Data streams. A new session goes onto the first channel with
// room; a new channel is made only when all are full; a channel whose last
// stream ended is destroyed, which closes its connection. Thread-safe.
//
// Channels are destroyed by collect_idle() on the event thread, never inside
// a gRPC callback where the last stream of a channel ends.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "uplink/grpc_channels.h"
#include "uplink/wire_request.h"

namespace kbgp::shm {
struct GlobalCounters;
}

namespace kbgp::uplink {

class ChannelPool;

// One stream's place on a channel; gives it back when destroyed.
class ChannelLease {
 public:
  ChannelLease() = default;
  ChannelLease(const ChannelLease&) = delete;
  ChannelLease& operator=(const ChannelLease&) = delete;
  ChannelLease(ChannelLease&& other) noexcept { *this = std::move(other); }
  ChannelLease& operator=(ChannelLease&& other) noexcept;
  ~ChannelLease() { release(); }

  DataStub* stub() const { return stub_; }
  uint64_t connection_id() const { return id_; }
  void release();

 private:
  friend class ChannelPool;
  ChannelPool* pool_ = nullptr;
  DataStub* stub_ = nullptr;
  uint64_t id_ = 0;
};

class ChannelPool {
 public:
  ChannelPool(const ChannelFactory& factory, uint32_t multi, shm::GlobalCounters* counters);
  ~ChannelPool();

  ChannelLease acquire();
  // Destroys the channels no stream uses any more. Event thread only.
  void collect_idle();
  size_t channel_count() const;

 private:
  friend class ChannelLease;
  struct Connection {
    uint64_t id;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<DataStub> stub;
    uint32_t streams = 0;
  };
  void release(uint64_t id);

  const ChannelFactory& factory_;
  uint32_t multi_;
  shm::GlobalCounters* counters_;
  mutable std::mutex mu_;
  std::vector<Connection> connections_;  // in creation order: packing fills the oldest first
  uint64_t next_id_ = 1;  // never reused, so a new channel never matches an old one's args
};

}  // namespace kbgp::uplink
