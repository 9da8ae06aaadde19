#include "supervisor/md5_keys.h"

#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kbgp {

namespace {

// setsockopt(TCP_MD5SIG_EXT) for one exact host; key_len 0 deletes.
int set_kernel_key(const Md5Listener& listener, const Endpoint& device, const uint8_t* key,
                   size_t key_len) {
  tcp_md5sig sig{};
  sig.tcpm_flags = TCP_MD5SIG_FLAG_PREFIX;
  if (listener.address.family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&sig.tcpm_addr);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, device.addr, 4);
    sig.tcpm_prefixlen = 32;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&sig.tcpm_addr);
    sin6->sin6_family = AF_INET6;
    if (device.family == AF_INET) {
      // IPv4 peers on a dual-stack socket: the v4-mapped form, and the
      // kernel wants a prefix of at most 32 for it.
      sin6->sin6_addr.s6_addr[10] = 0xff;
      sin6->sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(&sin6->sin6_addr.s6_addr[12], device.addr, 4);
      sig.tcpm_prefixlen = 32;
    } else {
      std::memcpy(&sin6->sin6_addr, device.addr, 16);
      sig.tcpm_prefixlen = 128;
    }
  }
  sig.tcpm_keylen = static_cast<uint16_t>(key_len);
  if (key_len) std::memcpy(sig.tcpm_key, key, key_len);
  int rc = ::setsockopt(listener.fd, IPPROTO_TCP, TCP_MD5SIG_EXT, &sig, sizeof sig);
  int err = rc == 0 ? 0 : errno;
  explicit_bzero(sig.tcpm_key, sizeof sig.tcpm_key);
  return err;
}

}  // namespace

std::vector<Md5Listener> describe_listeners(const std::vector<int>& fds) {
  std::vector<Md5Listener> out;
  for (int fd : fds) {
    Md5Listener l;
    l.fd = fd;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) continue;
    l.address = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    if (l.address.family == AF_INET6) {
      int v6only = 1;
      socklen_t optlen = sizeof v6only;
      if (::getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) == 0)
        l.dual_stack = v6only == 0;
    }
    if (l.address.family == AF_INET || l.address.family == AF_INET6) out.push_back(l);
  }
  return out;
}

std::optional<size_t> read_optmem_max() {
  int fd = ::open("/proc/sys/net/core/optmem_max", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[32] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  size_t value = 0;
  for (ssize_t i = 0; i < n && i < 19 && buf[i] >= '0' && buf[i] <= '9'; ++i)
    value = value * 10 + static_cast<size_t>(buf[i] - '0');
  if (value == 0) return std::nullopt;
  return value;
}

Md5KeyTable::Entry::~Entry() { explicit_bzero(key, sizeof key); }

Md5KeyTable::Md5KeyTable(std::vector<Md5Listener> listeners, size_t optmem_max, SetKey set_key)
    : listeners_(std::move(listeners)),
      per_socket_(listeners_.size(), 0),
      optmem_max_(optmem_max),
      capacity_(std::max<size_t>(optmem_max / kKernelBytesPerKey, 1)),
      set_key_(set_key ? std::move(set_key) : SetKey(set_kernel_key)) {}

// The kernel's copies go with the listening sockets; ours are wiped by
// ~Entry. No setsockopt here: at shutdown the sockets may be closed already
// and their numbers reused.
Md5KeyTable::~Md5KeyTable() = default;

std::string Md5KeyTable::address_key(const Endpoint& device) {
  Endpoint e = device.unmapped();
  size_t n = e.family == AF_INET ? 4 : 16;
  return std::string(reinterpret_cast<const char*>(e.addr), n) + static_cast<char>(e.family);
}

bool Md5KeyTable::applies(const Md5Listener& l, const Endpoint& device) const {
  if (device.family == AF_INET) return l.address.family == AF_INET || l.dual_stack;
  return l.address.family == AF_INET6;
}

void Md5KeyTable::count(const Endpoint& device, int delta) {
  for (size_t i = 0; i < listeners_.size(); ++i)
    if (applies(listeners_[i], device)) per_socket_[i] += delta;
}

Md5KeyTable::Result Md5KeyTable::install(const Endpoint& raw_device, const uint8_t* key,
                                         size_t key_len, int64_t expires_mono_ns,
                                         std::string* error) {
  Endpoint device = raw_device.unmapped();
  device.port = 0;
  if ((device.family != AF_INET && device.family != AF_INET6) || key_len == 0 ||
      key_len > kMd5MaxKeyBytes) {
    *error = "no device address or a key length outside 1..80";
    return Result::Invalid;
  }
  std::string k = address_key(device);
  auto it = keys_.find(k);
  if (it != keys_.end() && it->second.key_len == key_len &&
      std::memcmp(it->second.key, key, key_len) == 0) {
    it->second.expires_mono_ns = expires_mono_ns;
    return Result::Refreshed;
  }
  if (it == keys_.end() && keys_.size() >= kMaxKeys) {
    *error = "the supervisor holds " + std::to_string(kMaxKeys) + " keys already";
    return Result::Full;
  }
  // Every socket or none: a device that can reach only some listeners with
  // its key would fail in confusing ways.
  std::vector<size_t> done;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    if (!applies(listeners_[i], device)) continue;
    int err = set_key_(listeners_[i], device, key, key_len);
    if (err == 0) {
      done.push_back(i);
      continue;
    }
    *error = "the kernel refused the key on listener " + listeners_[i].address.to_string() +
             ": " + std::strerror(err);
    if (err == ENOMEM)
      *error += "; that socket holds " + std::to_string(per_socket_[i]) +
                " keys: raise net.core.optmem_max (now " + std::to_string(optmem_max_) +
                ", each key takes about " + std::to_string(kKernelBytesPerKey) + " bytes)";
    if (it == keys_.end()) {
      for (size_t j : done) set_key_(listeners_[j], device, nullptr, 0);
    } else {
      // A replacement half done: take the device's key off every socket
      // rather than leave old and new keys mixed.
      erase(it);
    }
    return Result::Refused;
  }
  Result result = Result::Replaced;
  if (it == keys_.end()) {
    it = keys_.try_emplace(k).first;
    it->second.device = device;
    count(device, +1);
    result = Result::Installed;
  }
  Entry& e = it->second;
  explicit_bzero(e.key, sizeof e.key);
  std::memcpy(e.key, key, key_len);
  e.key_len = key_len;
  e.expires_mono_ns = expires_mono_ns;
  return result;
}

void Md5KeyTable::erase(std::map<std::string, Entry>::iterator it) {
  for (const auto& l : listeners_)
    if (applies(l, it->second.device)) set_key_(l, it->second.device, nullptr, 0);
  count(it->second.device, -1);
  keys_.erase(it);
}

bool Md5KeyTable::remove(const Endpoint& device) {
  auto it = keys_.find(address_key(device));
  if (it == keys_.end()) return false;
  erase(it);
  return true;
}

bool Md5KeyTable::has(const Endpoint& device) const {
  return keys_.count(address_key(device)) > 0;
}

std::vector<Endpoint> Md5KeyTable::expire(int64_t now) {
  std::vector<Endpoint> gone;
  for (auto it = keys_.begin(); it != keys_.end();) {
    auto next = std::next(it);
    if (now >= it->second.expires_mono_ns) {
      gone.push_back(it->second.device);
      erase(it);
    }
    it = next;
  }
  return gone;
}

size_t Md5KeyTable::most_on_one_socket() const {
  size_t most = 0;
  for (size_t n : per_socket_) most = std::max(most, n);
  return most;
}

std::string Md5KeyTable::take_capacity_warning() {
  size_t most = most_on_one_socket();
  if (!warned_ && most * 10 >= capacity_ * 8) {
    warned_ = true;
    return "TCP-MD5 keys on one listening socket: " + std::to_string(most) + " of about " +
           std::to_string(capacity_) + " that net.core.optmem_max (" +
           std::to_string(optmem_max_) + " bytes) allows; raise it before more devices are "
           "added, e.g. sysctl -w net.core.optmem_max=" + std::to_string(optmem_max_ * 4);
  }
  if (warned_ && most * 10 < capacity_ * 7) warned_ = false;
  return {};
}

}  // namespace kbgp
