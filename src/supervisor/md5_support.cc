#include "supervisor/md5_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace kbgp {

namespace {

constexpr int64_t kSecondNs = 1'000'000'000;
constexpr int64_t kReopenDelayNs = 5 * kSecondNs;
constexpr int64_t kLogEveryNs = 10 * kSecondNs;

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::optional<uint64_t> number(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

const char* op_name(ipc::Md5KeyOp op) {
  switch (op) {
    case ipc::Md5KeyOp::Install: return "install";
    case ipc::Md5KeyOp::NoKey: return "no-key";
    case ipc::Md5KeyOp::Blocked: return "blocked";
    case ipc::Md5KeyOp::Unanswered: return "unanswered";
  }
  return "unknown";
}

void add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

bool parse_kernel_md5_counters(std::string_view text, KernelMd5Counters* out) {
  std::vector<std::string_view> names;
  KernelMd5Counters c;
  int found = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.substr(0, 7) != "TcpExt:") continue;
    auto fields = words(line.substr(7));
    if (names.empty()) {  // the first TcpExt line names, the second counts
      names = fields;
      continue;
    }
    for (size_t i = 0; i < fields.size() && i < names.size(); ++i) {
      auto v = number(fields[i]);
      if (!v) return false;
      if (names[i] == "TCPMD5NotFound") c.not_found = *v, ++found;
      if (names[i] == "TCPMD5Unexpected") c.unexpected = *v, ++found;
      if (names[i] == "TCPMD5Failure") c.failure = *v, ++found;
    }
    break;
  }
  if (found != 3) return false;
  *out = c;
  return true;
}

Md5Support::Md5Support(std::vector<Md5Listener> listeners, shm::GlobalCounters* counters,
                       Hooks hooks, size_t optmem_max, int64_t now)
    : listeners_(listeners),
      counters_(counters),
      hooks_(std::move(hooks)),
      keys_(std::move(listeners), optmem_max),
      policy_(now) {}

std::unique_ptr<Md5Support> Md5Support::create(const std::string& interface,
                                               const std::vector<int>& listen_fds,
                                               shm::GlobalCounters* counters, Hooks hooks,
                                               std::string* error) {
  std::vector<Md5Listener> listeners = describe_listeners(listen_fds);
  std::optional<size_t> optmem = read_optmem_max();
  const char* optmem_note = optmem ? "" : " (assumed: /proc/sys unreadable)";
  std::unique_ptr<Md5Support> md5(new Md5Support(listeners, counters, std::move(hooks),
                                                 optmem.value_or(kDefaultOptmemMax), 0));
  md5->interface_ = interface;
  for (const auto& l : listeners) md5->ports_.push_back(l.address.port);
  std::string why;
  bool no_interface = false;
  md5->capture_ = SynCapture::open(interface, md5->ports_, &why, &no_interface);
  if (!md5->capture_) {
    if (no_interface) {  // the operator named it: a typo must not go unnoticed
      *error = why;
      return nullptr;
    }
    log::warn("TCP-MD5: no SYN capture, so keys come only when the backend pushes them",
              {{"error", why}});
  }
  // Through self/: systemd's ProcSubset=pid hides /proc/net, not this.
  md5->netstat_ = UniqueFd(::open("/proc/self/net/netstat", O_RDONLY | O_CLOEXEC));
  if (!md5->netstat_)
    log::warn("TCP-MD5: cannot read the kernel's counters",
              {{"file", "/proc/self/net/netstat"}, {"error", std::strerror(errno)}});
  md5->read_kernel_counters(0);
  log::info("TCP-MD5 support enabled",
            {{"interface", interface},
             {"capture", md5->capture_ ? "on" : "off"},
             {"listeners", listeners.size()},
             {"keys-per-socket", md5->keys_.capacity_per_socket()},
             {"net.core.optmem_max", std::to_string(md5->keys_.optmem_max()) + optmem_note}});
  return md5;
}

bool Md5Support::to_our_listener(const Endpoint& dst) const {
  for (const auto& l : listeners_) {
    if (l.address.port != dst.port) continue;
    static const uint8_t kAny[16] = {};
    bool wildcard = std::memcmp(l.address.addr, kAny, 16) == 0;
    if (l.address.family == dst.family && (wildcard || l.address.same_address(dst))) return true;
    if (dst.family == AF_INET && l.dual_stack && wildcard) return true;
  }
  return false;
}

void Md5Support::on_capture_readable(int64_t now) {
  if (!capture_) return;
  SynCapture::Stats stats;
  bool ok = capture_->drain(kPacketsPerWake, &stats,
                            [&](const SynHeaders& syn) { on_syn(syn, now); });
  if (!ok) {
    log::error("TCP-MD5: the SYN capture failed; reopening it in 5 s",
               {{"interface", interface_}, {"error", std::strerror(errno)}});
    capture_.reset();
    reopen_at_ns_ = now + kReopenDelayNs;
  }
}

void Md5Support::on_syn(const SynHeaders& syn, int64_t now) {
  if (!to_our_listener(syn.destination)) return;
  add(counters_->md5_syns_seen);
  Endpoint device = syn.source;
  if (hooks_.denied && hooks_.denied(device)) return;
  bool installed = keys_.has(device);
  switch (policy_.on_signed_syn(device, installed, now)) {
    case Md5LookupPolicy::Verdict::Lookup:
      if (!hooks_.send_lookup || !hooks_.send_lookup(device, syn.destination)) {
        policy_.lookup_not_sent(device);
        add(counters_->md5_lookups_limited);
        log::debug("TCP-MD5: cannot ask for a key now (uplink not running)",
                   {{"peer-addr", device.to_string()}});
        return;
      }
      add(counters_->md5_lookups);
      if (now - lookup_log_window_ns_ >= kSecondNs) {
        lookup_log_window_ns_ = now;
        lookup_lines_in_window_ = 0;
      }
      if (++lookup_lines_in_window_ > kLookupLinesPerSecond) {
        ++lookups_unlogged_;
        break;
      }
      log::info(installed ? "TCP-MD5: SYNs keep failing with the installed key; asking the "
                            "backend for the device's key again"
                          : "TCP-MD5: signed SYN from a device without a key; asking the "
                            "backend for its key",
                {{"peer-addr", device.to_string()}, {"local-addr", syn.destination.to_string()}});
      break;
    case Md5LookupPolicy::Verdict::SourceLimited:
    case Md5LookupPolicy::Verdict::Busy:
      add(counters_->md5_lookups_limited);
      break;
    case Md5LookupPolicy::Verdict::KeyInstalled:
    case Md5LookupPolicy::Verdict::Pending:
      break;
  }
}

void Md5Support::on_key_message(const ipc::InstallMd5Key& msg, int64_t now) {
  Endpoint device = msg.device.unmapped();
  device.port = 0;
  auto op = static_cast<ipc::Md5KeyOp>(msg.op);
  bool valid_op = op == ipc::Md5KeyOp::Install || op == ipc::Md5KeyOp::NoKey ||
                  op == ipc::Md5KeyOp::Blocked ||
                  (op == ipc::Md5KeyOp::Unanswered && msg.answers_lookup);
  bool valid_key = op == ipc::Md5KeyOp::Install
                       ? msg.key_length >= 1 && msg.key_length <= ipc::kMd5MaxKeyLength
                       : msg.key_length == 0;
  if ((device.family != AF_INET && device.family != AF_INET6) || !valid_op || !valid_key) {
    log::warn("TCP-MD5: dropped an invalid key message from the uplink",
              {{"op", msg.op}, {"key-length", msg.key_length}});
    return;
  }
  auto answer = Md5LookupPolicy::Answer::Failed;
  switch (op) {
    case ipc::Md5KeyOp::Install:
      install(msg, device, now);
      answer = Md5LookupPolicy::Answer::Key;
      break;
    case ipc::Md5KeyOp::NoKey:
      remove(device, "the backend has no key for the device now", msg);
      answer = Md5LookupPolicy::Answer::NoKey;
      if (msg.answers_lookup)
        log::warn("TCP-MD5: the device signs its SYNs, but the backend has no key for it; "
                  "its sessions cannot come up until one of the two changes",
                  {{"peer-addr", device.address_string()}, {"device_id", msg.device_id}});
      break;
    case ipc::Md5KeyOp::Blocked:
      remove(device, "the backend blocks the device (BLOCK_IP)", msg);
      answer = Md5LookupPolicy::Answer::Blocked;
      if (msg.answers_lookup)
        log::info("TCP-MD5: the backend does not know the device that sent signed SYNs "
                  "(BLOCK_IP); it is deny-listed",
                  {{"peer-addr", device.address_string()}});
      break;
    case ipc::Md5KeyOp::Unanswered:
      add(counters_->md5_lookups_failed);
      ++unanswered_unlogged_;
      break;
  }
  if (msg.answers_lookup) policy_.on_answer(device, answer, now);
  publish_gauges();
}

void Md5Support::install(const ipc::InstallMd5Key& msg, const Endpoint& device, int64_t now) {
  uint32_t ttl = msg.ttl_seconds ? msg.ttl_seconds : kUncachedKeySeconds;
  std::string error;
  auto result = keys_.install(device, msg.key, msg.key_length,
                              now + static_cast<int64_t>(ttl) * kSecondNs, &error);
  const char* how = msg.answers_lookup ? "lookup" : "pushed";
  switch (result) {
    case Md5KeyTable::Result::Installed:
    case Md5KeyTable::Result::Replaced:
      add(counters_->md5_keys_installed);
      log::info(result == Md5KeyTable::Result::Installed ? "TCP-MD5 key installed"
                                                         : "TCP-MD5 key replaced",
                {{"peer-addr", device.address_string()},
                 {"device_id", msg.device_id},
                 {"from", how},
                 {"ttl_seconds", ttl},
                 {"keys", keys_.size()}});
      break;
    case Md5KeyTable::Result::Refreshed:
      log::debug("TCP-MD5 key unchanged; ttl renewed",
                 {{"peer-addr", device.address_string()}, {"ttl_seconds", ttl}});
      break;
    case Md5KeyTable::Result::Full:
    case Md5KeyTable::Result::Refused:
    case Md5KeyTable::Result::Invalid:
      add(counters_->md5_key_errors);
      log::error("TCP-MD5 key not installed: the device cannot connect",
                 {{"peer-addr", device.address_string()},
                  {"device_id", msg.device_id},
                  {"error", error}});
      break;
  }
  std::string warning = keys_.take_capacity_warning();
  if (!warning.empty()) log::warn(warning);
}

void Md5Support::remove(const Endpoint& device, const char* why,
                        const ipc::InstallMd5Key& msg) {
  if (!keys_.remove(device)) return;
  add(counters_->md5_keys_removed);
  log::info("TCP-MD5 key removed", {{"peer-addr", device.address_string()},
                                    {"device_id", msg.device_id},
                                    {"reason", why},
                                    {"op", op_name(static_cast<ipc::Md5KeyOp>(msg.op))}});
}

bool Md5Support::on_accept(const Endpoint& device) {
  policy_.on_accept(device);
  return keys_.has(device);
}

bool Md5Support::tick(int64_t now) {
  bool changed = false;
  auto expired = keys_.expire(now);
  if (!expired.empty()) {
    add(counters_->md5_keys_removed, expired.size());
    log::info("TCP-MD5 keys expired (their Control ttl ran out; a pushed or looked-up "
              "answer renews them)",
              {{"count", expired.size()}, {"first", expired.front().address_string()}});
  }
  for (const auto& source : policy_.expire(now)) {
    add(counters_->md5_lookups_failed);
    ++unanswered_unlogged_;
    (void)source;
  }
  if (unanswered_unlogged_ && now - unanswered_logged_ns_ >= kLogEveryNs) {
    log::warn("TCP-MD5: key lookups got no answer from the backend (is the Control stream "
              "up?); the devices' next SYNs ask again",
              {{"lookups", unanswered_unlogged_}});
    unanswered_unlogged_ = 0;
    unanswered_logged_ns_ = now;
  }
  if (lookups_unlogged_) {
    log::info("TCP-MD5: more key lookups than logged line by line",
              {{"lookups", lookups_unlogged_}, {"lines-per-second", kLookupLinesPerSecond}});
    lookups_unlogged_ = 0;
  }
  read_kernel_counters(now);
  for (const auto& f : policy_.take_failing(now)) {
    log::warn("TCP-MD5: the kernel keeps dropping the device's SYNs although a key is "
              "installed: its key is not the backend's (fix the key on the device or in "
              "the backend)",
              {{"peer-addr", f.source.address_string()},
               {"syns", f.syns},
               {"failing-for-s", f.failing_for_ns / kSecondNs},
               {"kernel-TCPMD5Failure",
                counters_->kernel_md5_failure.load(std::memory_order_relaxed)}});
  }
  if (!capture_ && reopen_at_ns_ && now >= reopen_at_ns_) {
    std::string error;
    capture_ = SynCapture::open(interface_, ports_, &error);
    reopen_at_ns_ = capture_ ? 0 : now + kReopenDelayNs;
    if (capture_) {
      log::info("TCP-MD5: SYN capture reopened", {{"interface", interface_}});
      changed = true;
    } else {
      log::warn("TCP-MD5: cannot reopen the SYN capture", {{"error", error}});
    }
  }
  if (capture_) add(counters_->md5_syns_dropped, capture_->take_kernel_drops());
  publish_gauges();
  return changed;
}

void Md5Support::read_kernel_counters(int64_t now) {
  if (!netstat_) return;
  char buf[16384];
  ssize_t n = ::pread(netstat_.get(), buf, sizeof buf, 0);
  KernelMd5Counters c;
  if (n <= 0 || !parse_kernel_md5_counters(std::string_view(buf, static_cast<size_t>(n)), &c))
    return;
  counters_->kernel_md5_not_found.store(c.not_found, std::memory_order_relaxed);
  counters_->kernel_md5_unexpected.store(c.unexpected, std::memory_order_relaxed);
  counters_->kernel_md5_failure.store(c.failure, std::memory_order_relaxed);
  if (!kernel_seen_) {
    kernel_seen_ = true;
    kernel_last_ = c;
    return;
  }
  if (now - kernel_logged_ns_ < kLogEveryNs) return;
  uint64_t failure = c.failure - kernel_last_.failure;
  uint64_t not_found = c.not_found - kernel_last_.not_found;
  uint64_t unexpected = c.unexpected - kernel_last_.unexpected;
  if (!failure && !not_found && !unexpected) return;
  // Host-wide counters (every TCP socket here): a hint next to the
  // per-device lines, which name the address.
  log::info("TCP-MD5: the kernel dropped SYNs since the last report",
            {{"wrong-signature", failure},
             {"signed-without-key", unexpected},
             {"unsigned-with-key", not_found},
             {"counters", "TcpExtTCPMD5Failure, TcpExtTCPMD5Unexpected, TcpExtTCPMD5NotFound"}});
  kernel_last_ = c;
  kernel_logged_ns_ = now;
}

void Md5Support::publish_gauges() {
  counters_->md5_keys.store(keys_.size(), std::memory_order_relaxed);
}

}  // namespace kbgp
