#include "common/layout.h"

#include <cstring>

namespace kbgp::shm {

void init_control(ControlRegion* region) {
  region->header.magic = kControlMagic;
  region->header.version = kLayoutVersion;
  region->header.region_size = kControlRegionSize;
  region->header.max_sessions = kMaxSessions;
  region->header.worker_count = kWorkerCount;
  region->header.sessions_offset = offsetof(ControlRegion, sessions);
}

void init_session(SessionRegion* region, uint32_t slot, uint32_t generation,
                  const uint8_t session_id[16]) {
  region->header.magic = kSessionMagic;
  region->header.version = kLayoutVersion;
  region->header.region_size = kSessionRegionSize;
  region->header.ring_capacity = kRingCapacity;
  region->header.slot = slot;
  region->header.generation = generation;
  std::memcpy(region->header.session_id, session_id, 16);
  region->header.up_offset = offsetof(SessionRegion, up_data);
  region->header.down_offset = offsetof(SessionRegion, down_data);
}

bool valid_control(const ControlRegion* region, size_t mapped_size) {
  return mapped_size >= kControlRegionSize && region->header.magic == kControlMagic &&
         region->header.version == kLayoutVersion &&
         region->header.region_size == kControlRegionSize &&
         region->header.max_sessions == kMaxSessions &&
         region->header.worker_count == kWorkerCount &&
         region->header.sessions_offset == offsetof(ControlRegion, sessions);
}

bool valid_session(const SessionRegion* region, size_t mapped_size) {
  return mapped_size >= kSessionRegionSize && region->header.magic == kSessionMagic &&
         region->header.version == kLayoutVersion &&
         region->header.region_size == kSessionRegionSize &&
         region->header.ring_capacity == kRingCapacity &&
         region->header.up_offset == offsetof(SessionRegion, up_data) &&
         region->header.down_offset == offsetof(SessionRegion, down_data) &&
         region->header.slot < kMaxSessions;
}

}  // namespace kbgp::shm
