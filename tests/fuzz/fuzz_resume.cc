// libFuzzer target: resuming a Data stream (common/resume_protocol.h) with
// whatever counters the other side claims. The backend's initial metadata
// goes through the uplink's real judgement (judge_stream_open, as
// session.cc applies it) against a ResumeLedger filled with arbitrary
// request ends; the agent's counters go through the backend's rule
// (backend_decides). Checks that a resume never asks for a message that
// was not sent or is no longer kept, and that the strict rule accepts only
// equal counters.
//
// Input: our counter-up and counter-down (two 16-bit values, small so that
// the ledger's window matters), the up ring's read position (16 bits), a
// 16-bit length and that many bytes of ledger steps (each: a gap byte and
// a length byte of one DataRequest), then the backend's initial metadata as
// "key: value" lines.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/layout.h"
#include "common/resume_protocol.h"
#include "fuzz_input.h"
#include "uplink/data_decisions.h"
#include "uplink/resume_ledger.h"

using namespace kbgp;
using namespace kbgp::uplink;

namespace {

void check_resume(const resume::Decision& d, uint64_t sent, uint64_t received,
                  uint64_t kept_from) {
  if (d.kill) {
    FUZZ_CHECK(!d.why.empty());
    return;
  }
  FUZZ_CHECK(received <= sent);
  if (d.resend_from == 0) {
    FUZZ_CHECK(d.resend_to == 0 && received == sent);
    return;
  }
  FUZZ_CHECK(d.resend_from == received + 1 && d.resend_to == sent);
  FUZZ_CHECK(received >= kept_from);  // everything resent is still kept
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  uint64_t our_up = in.u16();
  uint64_t our_down = in.u16();
  uint64_t read_pos = in.u16();

  // The ledger as an uplink leaves it: DataRequest n ends at a growing
  // position, recorded for the last kRequestWindow of them.
  auto record = std::make_unique<shm::UplinkRecord>();
  ResumeLedger ledger(record.get());
  std::string_view steps = in.record();
  uint64_t n = our_up > steps.size() / 2 ? our_up - steps.size() / 2 : 0;
  uint64_t end = 0;
  for (size_t i = 0; i + 1 < steps.size() && n < our_up; i += 2) {
    ++n;
    end += static_cast<uint8_t>(steps[i + 1]);
    if (steps[i] & 1) continue;  // a gap: this one was never recorded (torn)
    ledger.record_request(n, end);
    FUZZ_CHECK(ledger.end_of(n) == end);
  }
  uint64_t kept_from = ledger.kept_from(our_up, read_pos);
  FUZZ_CHECK(kept_from <= our_up + 1);
  if (kept_from <= our_up) {
    // Every DataRequest after kept_from can be rebuilt from the ring.
    std::optional<uint64_t> previous;
    for (uint64_t s = kept_from; s <= our_up; ++s) {
      auto e = ledger.end_of(s);
      FUZZ_CHECK(e && *e >= read_pos);
      if (previous) FUZZ_CHECK(*previous <= *e);
      previous = e;
    }
  }

  Metadata md;
  for (auto [key, value] : fuzz::key_value_views(in.rest())) md.emplace_back(key, value);

  StreamOpenVerdict v = judge_stream_open(md, our_up, our_down, kept_from);
  FUZZ_CHECK(v.extension == (metadata_value(md, resume::kMetadataKey) == std::string("1")));
  if (!v.server_up_text || !v.server_down_text) FUZZ_CHECK(v.decision.kill);
  if (!v.decision.kill) {
    FUZZ_CHECK(parse_counter(*v.server_up_text) == v.server_up);
    FUZZ_CHECK(parse_counter(*v.server_down_text) == v.server_down);
    if (!v.extension) {
      FUZZ_CHECK(v.server_up == our_up && v.server_down == our_down);
      FUZZ_CHECK(v.decision.resend_from == 0);
    } else {
      FUZZ_CHECK(v.server_down >= our_down);  // the backend resends what we miss
    }
    check_resume(v.decision, our_up, v.server_up, kept_from);
  }

  // The same counters as the agent's metadata, seen by the backend (its
  // window: kWindowMessages behind what it sent).
  uint64_t backend_kept = our_down > resume::kWindowMessages ? our_down - resume::kWindowMessages : 0;
  for (bool extension : {false, true}) {
    resume::Decision d = resume::backend_decides(extension, our_up, our_down, v.server_up,
                                                 v.server_down, backend_kept);
    if (d.kill) continue;
    if (!extension) {
      FUZZ_CHECK(v.server_up == our_up && v.server_down == our_down && d.resend_from == 0);
    } else {
      FUZZ_CHECK(v.server_up >= our_up);
      check_resume(d, our_down, v.server_down, backend_kept);
    }
  }

  // A response whose copy was begun is found again only by its number.
  ledger.begin_response(our_down + 1, read_pos);
  FUZZ_CHECK(ledger.delivered_part(our_down + 1, read_pos + our_up) == our_up);
  FUZZ_CHECK(ledger.delivered_part(our_down + 2, read_pos + our_up) == 0);
  FUZZ_CHECK(ledger.delivered_part(our_down + 1, read_pos > 0 ? read_pos - 1 : 0) == 0 ||
             read_pos == 0);
  return 0;
}
