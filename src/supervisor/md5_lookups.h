// When a captured signed SYN earns a key lookup (Md5Lookup to the uplink,
// which asks Control), and when it does not. No I/O: the supervisor feeds
// it SYNs, answers and accepts, and acts on its verdicts.
//
// A SYN's source address can be forged, so everything is bounded:
//  * one entry per source address in an LRU of kMaxSources (a flood of
//    forged sources recycles entries, it cannot grow memory);
//  * per source: one lookup per kPerSourceInterval, kNegativeInterval after
//    an answer without a key, kRefreshInterval when a key is installed but
//    the source's SYNs keep failing (its key may have changed);
//  * overall: a token bucket (kRatePerSecond, burst kBurst) and at most
//    kMaxPending lookups waiting for an answer (each ends with its answer
//    or after kAnswerTimeout), so the backend sees a bounded request rate
//    and a device that retries gets its turn as tokens come back.
// Devices whose keys were pushed ahead of time never need a lookup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/endpoint.h"

namespace kbgp {

class Md5LookupPolicy {
 public:
  static constexpr size_t kMaxSources = 4096;
  static constexpr size_t kMaxPending = 256;
  static constexpr int64_t kSecond = 1'000'000'000;
  static constexpr int64_t kPerSourceInterval = 5 * kSecond;
  static constexpr int64_t kNegativeInterval = 60 * kSecond;
  static constexpr int64_t kRefreshInterval = 30 * kSecond;
  static constexpr int64_t kAnswerTimeout = 15 * kSecond;
  // SYNs still coming this long after the first one that found a key
  // installed (and no connection accepted since): the keys differ.
  static constexpr int64_t kFailingAfter = 3 * kSecond;
  static constexpr int64_t kWarnInterval = 60 * kSecond;
  static constexpr uint32_t kRatePerSecond = 50;
  static constexpr uint32_t kBurst = 256;

  enum class Verdict {
    Lookup,         // ask now (the caller sends Md5Lookup, then lookup_sent())
    KeyInstalled,   // nothing to ask: the kernel has a key for it
    Pending,        // a lookup for it is under way
    SourceLimited,  // asked recently (or answered "no key" recently)
    Busy,           // the overall rate or the pending cap is exhausted
  };
  enum class Answer { Key, NoKey, Blocked, Failed };

  explicit Md5LookupPolicy(int64_t now_mono_ns);

  // A signed SYN from `source` (address only counts) seen at `now`.
  Verdict on_signed_syn(const Endpoint& source, bool key_installed, int64_t now);
  // The caller could not send the lookup after all: give the token back.
  void lookup_not_sent(const Endpoint& source);
  void on_answer(const Endpoint& source, Answer answer, int64_t now);
  // A connection from `source` was accepted (its SYNs are not failing).
  void on_accept(const Endpoint& source);

  struct Failing {
    Endpoint source;
    uint64_t syns;          // SYNs seen since the first one that failed
    int64_t failing_for_ns;
  };
  // Sources with a key installed whose SYNs keep coming without a
  // connection, each returned once per kWarnInterval.
  std::vector<Failing> take_failing(int64_t now);
  // Pending lookups past kAnswerTimeout end as Failed; returns their sources.
  std::vector<Endpoint> expire(int64_t now);

  size_t sources() const { return map_.size(); }
  size_t pending() const { return pending_; }

 private:
  struct Entry {
    Endpoint source;
    int64_t last_syn_ns = 0;
    int64_t last_lookup_ns = 0;  // 0 = never asked
    int64_t pending_since_ns = 0;  // 0 = nothing pending
    Answer answer = Answer::Failed;
    bool answered = false;
    int64_t failing_since_ns = 0;  // first SYN that found a key; 0 after an accept
    uint64_t failing_syns = 0;
    int64_t last_warned_ns = 0;
  };
  using List = std::list<Entry>;

  static std::string key(const Endpoint& source);
  Entry& touch(const Endpoint& source);  // finds or makes, most recent first
  Entry* find(const Endpoint& source);
  void set_pending(Entry& e, int64_t since);
  void refill(int64_t now);

  List lru_;  // most recently used first
  std::unordered_map<std::string, List::iterator> map_;
  size_t pending_ = 0;
  double tokens_;
  int64_t refilled_ns_;
};

}  // namespace kbgp
