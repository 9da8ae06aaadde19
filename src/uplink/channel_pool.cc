#include "uplink/channel_pool.h"

#include <algorithm>

#include "common/layout.h"
#include "common/log.h"

namespace kbgp::uplink {

ChannelLease& ChannelLease::operator=(ChannelLease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::exchange(other.pool_, nullptr);
    stub_ = std::exchange(other.stub_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void ChannelLease::release() {
  if (pool_) pool_->release(id_);
  pool_ = nullptr;
  stub_ = nullptr;
  id_ = 0;
}

ChannelPool::ChannelPool(const ChannelFactory& factory, uint32_t multi,
                         shm::GlobalCounters* counters)
    : factory_(factory), multi_(std::max<uint32_t>(multi, 1)), counters_(counters) {}

ChannelPool::~ChannelPool() {
  std::lock_guard lock(mu_);
  counters_->grpc_connections_open.fetch_sub(connections_.size(), std::memory_order_relaxed);
}

ChannelLease ChannelPool::acquire() {
  std::lock_guard lock(mu_);
  // A connection known to be failing keeps its streams (they end on their
  // own) but gets no new one.
  auto it = std::find_if(connections_.begin(), connections_.end(), [&](const Connection& c) {
    return c.streams < multi_ &&
           c.channel->GetState(false) != GRPC_CHANNEL_TRANSIENT_FAILURE;
  });
  if (it == connections_.end()) {
    Connection c;
    c.id = next_id_++;
    c.channel = factory_.make("data-" + std::to_string(c.id));
    c.stub = std::make_unique<DataStub>(c.channel);
    connections_.push_back(std::move(c));
    it = connections_.end() - 1;
    counters_->grpc_connections_open.fetch_add(1, std::memory_order_relaxed);
    log::debug("new Data connection", {{"connection", it->id}});
  }
  ++it->streams;
  ChannelLease lease;
  lease.pool_ = this;
  lease.stub_ = it->stub.get();
  lease.id_ = it->id;
  return lease;
}

void ChannelPool::release(uint64_t id) {
  std::lock_guard lock(mu_);
  for (auto& c : connections_) {
    if (c.id == id && c.streams > 0) {
      --c.streams;
      return;
    }
  }
}

void ChannelPool::collect_idle() {
  std::vector<Connection> idle;
  {
    std::lock_guard lock(mu_);
    auto keep = std::stable_partition(connections_.begin(), connections_.end(),
                                      [](const Connection& c) { return c.streams > 0; });
    std::move(keep, connections_.end(), std::back_inserter(idle));
    connections_.erase(keep, connections_.end());
    counters_->grpc_connections_open.fetch_sub(idle.size(), std::memory_order_relaxed);
  }
  for (const auto& c : idle) log::debug("closing idle Data connection", {{"connection", c.id}});
  // `idle` goes out of scope here, outside the lock: destroying the last
  // reference to a channel closes its HTTP/2 connection.
}

size_t ChannelPool::channel_count() const {
  std::lock_guard lock(mu_);
  return connections_.size();
}

}  // namespace kbgp::uplink
