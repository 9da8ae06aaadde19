#include "uplink/data_decisions.h"

#include <algorithm>

namespace kbgp::uplink {

namespace pb = kentik::ktbgp::v202203beta2;

StreamOpenVerdict judge_stream_open(const Metadata& md, uint64_t open_up, uint64_t open_down,
                                    uint64_t kept_from) {
  StreamOpenVerdict v;
  v.server_up_text = metadata_value(md, "counter-up");
  v.server_down_text = metadata_value(md, "counter-down");
  bool readable = v.server_up_text && v.server_down_text;
  if (readable) {
    auto up_parsed = parse_counter(*v.server_up_text);
    auto down_parsed = parse_counter(*v.server_down_text);
    readable = up_parsed.has_value() && down_parsed.has_value();
    if (readable) {
      v.server_up = *up_parsed;
      v.server_down = *down_parsed;
    }
  }
  v.extension = resume::requested(metadata_value(md, resume::kMetadataKey));
  if (!readable) {
    v.decision.kill = true;
    v.decision.why = "counters missing or unreadable";
  } else {
    v.decision =
        resume::agent_decides(v.extension, open_up, open_down, v.server_up, v.server_down, kept_from);
  }
  return v;
}

ResponseReading read_response(const pb::DataResponse& response, bool extension) {
  ResponseReading r;
  if (static_cast<int>(response.action()) == resume::kActionAck) {
    r.kind = ResponseKind::Ack;
    if (extension && response.data_size() == 1) r.ack_count = resume::decode_ack(response.data(0));
    return r;
  }
  if (response.action() == pb::DATA_ACTION_KILL) {
    r.kind = ResponseKind::Kill;
    return r;
  }
  r.restart = response.action() == pb::DATA_ACTION_RESTART;
  return r;
}

void DownCopy::start(const pb::DataResponse& response, uint64_t skip) {
  index_ = 0;
  offset_ = 0;
  while (skip > 0 && index_ < response.data_size()) {
    size_t left = response.data(index_).size() - offset_;
    size_t n = static_cast<size_t>(std::min<uint64_t>(skip, left));
    offset_ += n;
    skip -= n;
    if (offset_ == response.data(index_).size()) {
      ++index_;
      offset_ = 0;
    }
  }
}

DownCopy::Progress DownCopy::copy(const pb::DataResponse& response, RingProducer& ring) {
  Progress p;
  while (index_ < response.data_size()) {
    const std::string& chunk = response.data(index_);
    if (offset_ < chunk.size()) {
      size_t n = ring.write_some({reinterpret_cast<const uint8_t*>(chunk.data()) + offset_,
                                  chunk.size() - offset_});
      p.wrote |= n > 0;
      offset_ += n;
      if (offset_ < chunk.size()) break;  // ring full: the listener wakes us
    }
    ++index_;
    offset_ = 0;
  }
  p.complete = index_ == response.data_size();
  return p;
}

}  // namespace kbgp::uplink
