#include "supervisor/md5_lookups.h"

#include <algorithm>

namespace kbgp {

Md5LookupPolicy::Md5LookupPolicy(int64_t now) : tokens_(kBurst), refilled_ns_(now) {}

std::string Md5LookupPolicy::key(const Endpoint& source) {
  Endpoint e = source.unmapped();
  size_t n = e.family == AF_INET ? 4 : 16;
  return std::string(reinterpret_cast<const char*>(e.addr), n) + static_cast<char>(e.family);
}

Md5LookupPolicy::Entry* Md5LookupPolicy::find(const Endpoint& source) {
  auto it = map_.find(key(source));
  return it == map_.end() ? nullptr : &*it->second;
}

Md5LookupPolicy::Entry& Md5LookupPolicy::touch(const Endpoint& source) {
  std::string k = key(source);
  auto it = map_.find(k);
  if (it != map_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return lru_.front();
  }
  if (map_.size() >= kMaxSources) {
    Entry& old = lru_.back();
    if (old.pending_since_ns) --pending_;
    map_.erase(key(old.source));
    lru_.pop_back();
  }
  lru_.emplace_front();
  lru_.front().source = source.unmapped();
  lru_.front().source.port = 0;
  map_.emplace(std::move(k), lru_.begin());
  return lru_.front();
}

void Md5LookupPolicy::set_pending(Entry& e, int64_t since) {
  if (!e.pending_since_ns && since) ++pending_;
  if (e.pending_since_ns && !since) --pending_;
  e.pending_since_ns = since;
}

void Md5LookupPolicy::refill(int64_t now) {
  if (now <= refilled_ns_) return;
  double add = static_cast<double>(now - refilled_ns_) * kRatePerSecond / kSecond;
  tokens_ = std::min<double>(kBurst, tokens_ + add);
  refilled_ns_ = now;
}

Md5LookupPolicy::Verdict Md5LookupPolicy::on_signed_syn(const Endpoint& source,
                                                        bool key_installed, int64_t now) {
  refill(now);
  Entry& e = touch(source);
  e.last_syn_ns = now;
  if (key_installed) {
    if (!e.failing_since_ns) {
      e.failing_since_ns = now;
      e.failing_syns = 0;
    }
    ++e.failing_syns;
    if (now - e.failing_since_ns < kFailingAfter) return Verdict::KeyInstalled;
    // The kernel keeps dropping its SYNs: perhaps the backend has a new key.
    if (e.pending_since_ns) return Verdict::Pending;
    if (e.last_lookup_ns && now - e.last_lookup_ns < kRefreshInterval)
      return Verdict::KeyInstalled;
  } else {
    e.failing_since_ns = 0;
    if (e.pending_since_ns) return Verdict::Pending;
    bool negative = e.answered && (e.answer == Answer::NoKey || e.answer == Answer::Blocked);
    int64_t wait = negative ? kNegativeInterval : kPerSourceInterval;
    if (e.last_lookup_ns && now - e.last_lookup_ns < wait) return Verdict::SourceLimited;
  }
  if (pending_ >= kMaxPending || tokens_ < 1) return Verdict::Busy;
  tokens_ -= 1;
  e.last_lookup_ns = now;
  set_pending(e, now);
  return Verdict::Lookup;
}

void Md5LookupPolicy::lookup_not_sent(const Endpoint& source) {
  if (Entry* e = find(source)) {
    set_pending(*e, 0);
    e->last_lookup_ns = 0;
  }
  tokens_ = std::min<double>(kBurst, tokens_ + 1);
}

void Md5LookupPolicy::on_answer(const Endpoint& source, Answer answer, int64_t) {
  Entry* e = find(source);
  if (!e) return;  // recycled meanwhile; the key (if any) is installed all the same
  set_pending(*e, 0);
  e->answered = answer != Answer::Failed;
  e->answer = answer;
}

void Md5LookupPolicy::on_accept(const Endpoint& source) {
  if (Entry* e = find(source)) {
    e->failing_since_ns = 0;
    e->failing_syns = 0;
  }
}

std::vector<Md5LookupPolicy::Failing> Md5LookupPolicy::take_failing(int64_t now) {
  std::vector<Failing> out;
  for (Entry& e : lru_) {
    if (!e.failing_since_ns || e.last_syn_ns - e.failing_since_ns < kFailingAfter) continue;
    if (e.last_warned_ns && now - e.last_warned_ns < kWarnInterval) continue;
    e.last_warned_ns = now;
    out.push_back({e.source, e.failing_syns, now - e.failing_since_ns});
  }
  return out;
}

std::vector<Endpoint> Md5LookupPolicy::expire(int64_t now) {
  std::vector<Endpoint> out;
  if (!pending_) return out;
  for (Entry& e : lru_) {
    if (e.pending_since_ns && now - e.pending_since_ns >= kAnswerTimeout) {
      set_pending(e, 0);
      e.answered = false;
      out.push_back(e.source);
    }
  }
  return out;
}

}  // namespace kbgp
