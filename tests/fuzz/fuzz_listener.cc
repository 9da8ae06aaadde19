// libFuzzer target: the listener's session core (listener/frame_assembler.h,
// down_framing.h) beyond what fuzz_framing covers: device bytes arriving in
// reads of any size into a ring of any size, the uplink freeing space at
// its own pace, a listener restart in the middle (a new assembler on the
// same region), and the backend's stream followed for its OPEN, also
// across a restart. Checks: the ring publishes exactly a prefix of the
// device's bytes, as whole well-framed messages; malformed input ends the
// session; the down stream's message count and OPEN agree with a plain
// walk over the same bytes. With bit 0 of the flags, the restarted
// listener's down state comes from the input: a corrupted record must be
// refused, never trusted.
//
// Input: flags, ring size selector, read size, restart point (in reads),
// sizeof(DownFramingState) = 48 bytes of down state (used with bit 0), then
// the byte stream.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/bgp_framing.h"
#include "common/layout.h"
#include "common/ring.h"
#include "fuzz_input.h"
#include "listener/down_framing.h"
#include "listener/frame_assembler.h"

using namespace kbgp;
using kbgp::listener::DownFraming;
using kbgp::listener::FrameAssembler;
using Status = FrameAssembler::Result::Status;

namespace {

struct Reference {
  size_t messages = 0;  // complete messages before the stream ends or breaks
  std::optional<size_t> first_open_end;
  std::optional<bgp::OpenInfo> first_open;
};

// The down stream as DownFraming must see it.
Reference walk(std::span<const uint8_t> bytes) {
  Reference r;
  size_t pos = 0;
  bool open_seen = false;
  while (pos < bytes.size()) {
    auto frame = bgp::check_frame(bytes.subspan(pos), bgp::kMaxExtendedMessage);
    if (frame.status != bgp::FrameCheck::Status::Complete) break;
    if (frame.type == bgp::kOpen && !open_seen) {
      open_seen = true;
      if (frame.length <= shm::kMaxOpenMessage) {
        r.first_open_end = pos + frame.length;
        r.first_open = bgp::parse_open(bytes.subspan(pos, frame.length));
      }
    }
    pos += frame.length;
    ++r.messages;
  }
  return r;
}

bool same_open(const std::optional<bgp::OpenInfo>& a, const std::optional<bgp::OpenInfo>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->asn == b->asn && a->hold_time == b->hold_time && a->extended_message == b->extended_message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  uint8_t flags = in.u8();
  size_t capacity = 19 + (in.u8() * 277) % 70000;
  size_t read_size = 1 + in.u8();
  size_t restart_at = in.u8();
  std::string_view corrupt = in.bytes(sizeof(shm::DownFramingState));
  std::string_view stream_text = in.rest();
  std::span<const uint8_t> stream(reinterpret_cast<const uint8_t*>(stream_text.data()),
                                  stream_text.size());

  // ---- up: device -> ring ----
  shm::RingHeader header{};
  std::vector<uint8_t> ring(capacity);
  auto record = std::make_unique<shm::ListenerRecord>();
  auto assembler = std::make_unique<FrameAssembler>(RingProducer(&header, ring.data(), capacity),
                                                    record.get());
  RingConsumer uplink(&header, ring.data(), capacity);
  std::vector<uint8_t> published;
  size_t fed = 0;
  bool malformed = false;
  for (size_t reads = 0; fed < stream.size() && !malformed; ++reads) {
    if (reads == restart_at) {
      // The listener restarts: a new assembler carries on from the record.
      assembler = std::make_unique<FrameAssembler>(RingProducer(&header, ring.data(), capacity),
                                                   record.get());
      FUZZ_CHECK(assembler->consistent());
      FUZZ_CHECK(assembler->taken() == fed);
    }
    auto space = assembler->read_space();
    size_t n = std::min({read_size, stream.size() - fed, space.first.size() + space.second.size()});
    size_t n1 = std::min(n, space.first.size());
    std::copy_n(stream.data() + fed, n1, space.first.data());
    std::copy_n(stream.data() + fed + n1, n - n1, space.second.data());
    assembler->commit_read(n);
    fed += n;
    auto result = assembler->drain();
    if (result.status == Status::Malformed) {
      FUZZ_CHECK(result.error && *result.error);
      malformed = true;
    }
    // The uplink takes everything published (whole messages only).
    auto readable = uplink.readable();
    published.insert(published.end(), readable.first.begin(), readable.first.end());
    published.insert(published.end(), readable.second.begin(), readable.second.end());
    uplink.consume(readable.size());
    // Stuck (no room, nothing published): a message longer than this ring
    // (smaller than a real one) is staged and fills it.
    if (n == 0 && readable.size() == 0 && !malformed) break;
  }
  FUZZ_CHECK(published.size() <= fed);
  FUZZ_CHECK(std::equal(published.begin(), published.end(), stream.begin()));
  for (size_t pos = 0; pos < published.size();) {
    auto frame = bgp::check_frame(std::span(published).subspan(pos), bgp::kMaxExtendedMessage);
    FUZZ_CHECK(frame.status == bgp::FrameCheck::Status::Complete);
    pos += frame.length;
  }

  // ---- down: backend -> device, followed for its OPEN ----
  auto down_record = std::make_unique<shm::ListenerRecord>();
  auto down = std::make_unique<DownFraming>(down_record.get());
  Reference reference = walk(stream);
  std::optional<bgp::OpenInfo> open_seen;
  size_t open_count = 0;
  for (size_t pos = 0, feeds = 0; pos < stream.size(); ++feeds) {
    if (feeds == restart_at) {
      down->save(pos);
      if ((flags & 1) && corrupt.size() == sizeof(shm::DownFramingState)) {
        uint32_t current = down_record->down_current.load() & 1;
        std::memcpy(&down_record->down_state[current], corrupt.data(), corrupt.size());
        down_record->down_state[current].position = pos;
        down = std::make_unique<DownFraming>(down_record.get());
        // Whatever the record says, feeding must stay within its buffers.
        for (size_t p = pos; p < stream.size(); p += read_size)
          (void)down->feed(stream.subspan(p, std::min(read_size, stream.size() - p)));
        return 0;
      }
      down = std::make_unique<DownFraming>(down_record.get());
      FUZZ_CHECK(down->saved_position() == pos);
    }
    size_t n = std::min(read_size, stream.size() - pos);
    if (auto open = down->feed(stream.subspan(pos, n))) {
      ++open_count;
      open_seen = open;
      FUZZ_CHECK(reference.first_open_end && *reference.first_open_end > pos &&
                 *reference.first_open_end <= pos + n);
    }
    pos += n;
  }
  FUZZ_CHECK(open_count <= 1);
  if (reference.first_open) FUZZ_CHECK(same_open(open_seen, reference.first_open));
  if (!down->lost()) FUZZ_CHECK(down->messages() == reference.messages);
  return 0;
}
