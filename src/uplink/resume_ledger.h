// The uplink's resume bookkeeping in the session region (layout.h
// UplinkRecord), so that a restarted uplink knows exactly what its
// predecessor sent and delivered:
//
//  * where each DataRequest ends in the up ring, by counter-up value, for
//    the last kRequestWindow of them: with read_pos (the acknowledged end)
//    and slot.data_requests (the count) this rebuilds every DataRequest the
//    backend may not have received, byte for byte;
//  * which DataResponse was being copied into the down ring and where it
//    started: a resent copy of it skips what is there already.
//
// Every value is stored so that a crash between two stores leaves a record
// that is either the old one or the new one (layout.h).
#pragma once

#include <cstdint>
#include <optional>

#include "common/layout.h"

namespace kbgp::uplink {

class ResumeLedger {
 public:
  explicit ResumeLedger(shm::UplinkRecord* record) : record_(record) {}

  // Up-ring position one past DataRequest `n` (0 for n = 0), if still known.
  std::optional<uint64_t> end_of(uint64_t n) const;
  // DataRequest `n` ends at `end`. Overwrites n - kRequestWindow.
  void record_request(uint64_t n, uint64_t end);
  // The lowest count s <= `count` such that every DataRequest after s can
  // be rebuilt: ends known for s..count, and end_of(s) >= `read_pos` (the
  // bytes are still in the ring).
  uint64_t kept_from(uint64_t count, uint64_t read_pos) const;

  // DataResponse `n` starts at down-ring position `start`.
  void begin_response(uint64_t n, uint64_t start);
  // Bytes of DataResponse `n` already in the down ring (write_pos is the
  // down ring's), when `n` is the response whose copy was begun.
  uint64_t delivered_part(uint64_t n, uint64_t write_pos) const;

 private:
  shm::UplinkRecord* record_;
};

}  // namespace kbgp::uplink
