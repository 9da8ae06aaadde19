// The TCP-MD5 keys in force: one per device address, installed on every
// listening socket that device can reach (setsockopt TCP_MD5SIG_EXT, an
// exact host prefix). A key on a listening socket needs no capability; an
// accepted connection inherits its own copy, so changing or removing a key
// here never touches a session that is already up.
//
// Family rules (Linux): an IPv4 device gets its key on AF_INET listeners,
// and, as an IPv4-mapped address with prefix 32, on AF_INET6 listeners that
// are not IPV6_V6ONLY (dual-stack: IPv4 peers arrive there); an IPv6 device
// only on AF_INET6 listeners.
//
// The kernel charges each key (~136 bytes) to the socket's option memory,
// limited by net.core.optmem_max: about 960 keys per socket with the
// default 131072. The table counts keys per socket and warns at 80 % of
// what the sysctl allows, naming it; a refused key is logged the same way.
//
// Key bytes live here and in the kernel only: never logged, wiped when an
// entry goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/endpoint.h"

namespace kbgp {

constexpr size_t kMd5MaxKeyBytes = 80;  // TCP_MD5SIG_MAXKEYLEN

struct Md5Listener {
  int fd = -1;
  Endpoint address;         // where it is bound (family, address, port)
  bool dual_stack = false;  // AF_INET6 without IPV6_V6ONLY
};

// Describes the listening sockets for the table (getsockname, IPV6_V6ONLY).
std::vector<Md5Listener> describe_listeners(const std::vector<int>& fds);

class Md5KeyTable {
 public:
  // Entries at most: the keys come from the uplink, which must not be able
  // to grow the supervisor's memory without bound; far above what the
  // kernel takes per socket anyway.
  static constexpr size_t kMaxKeys = 16384;
  // What one key costs in a socket's option memory (sizeof struct
  // tcp_md5sig_key on 64-bit Linux), for the capacity estimate.
  static constexpr size_t kKernelBytesPerKey = 136;

  // `set_key` applies one key to one socket (key_len 0 = delete); tests
  // replace it, the default calls setsockopt. It returns 0 or an errno.
  using SetKey = std::function<int(const Md5Listener& listener, const Endpoint& device,
                                   const uint8_t* key, size_t key_len)>;
  Md5KeyTable(std::vector<Md5Listener> listeners, size_t optmem_max, SetKey set_key = {});
  ~Md5KeyTable();
  Md5KeyTable(const Md5KeyTable&) = delete;
  Md5KeyTable& operator=(const Md5KeyTable&) = delete;

  enum class Result { Installed, Replaced, Refreshed, Full, Refused, Invalid };
  // Installs (or replaces) the key for `device` (address only) until
  // `expires_mono_ns`. Refreshed: same key, only the deadline moved.
  // Refused: the kernel said no on some socket (`error` says which and
  // why; the key is then on no socket). Full: kMaxKeys live keys.
  Result install(const Endpoint& device, const uint8_t* key, size_t key_len,
                 int64_t expires_mono_ns, std::string* error);
  // Removes the key of `device` from every socket; true if there was one.
  bool remove(const Endpoint& device);
  bool has(const Endpoint& device) const;
  // Removes every key past its deadline; returns their addresses.
  std::vector<Endpoint> expire(int64_t now_mono_ns);

  size_t size() const { return keys_.size(); }
  // Keys on the fullest socket, and what net.core.optmem_max allows there.
  size_t most_on_one_socket() const;
  size_t capacity_per_socket() const { return capacity_; }
  size_t optmem_max() const { return optmem_max_; }
  // Non-empty once per crossing of 80 % of the capacity on some socket (it
  // re-arms below 70 %): the warning to log.
  std::string take_capacity_warning();

 private:
  struct Entry {
    Endpoint device;
    uint8_t key[kMd5MaxKeyBytes] = {};
    size_t key_len = 0;
    int64_t expires_mono_ns = 0;
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry();
  };
  static std::string address_key(const Endpoint& device);
  bool applies(const Md5Listener& listener, const Endpoint& device) const;
  void count(const Endpoint& device, int delta);
  void erase(std::map<std::string, Entry>::iterator it);

  std::vector<Md5Listener> listeners_;
  std::vector<size_t> per_socket_;  // keys on listeners_[i]
  size_t optmem_max_;
  size_t capacity_;
  bool warned_ = false;
  SetKey set_key_;
  std::map<std::string, Entry> keys_;  // address bytes + family -> entry
};

// The kernel's default per-socket option memory limit.
constexpr size_t kDefaultOptmemMax = 131072;
// The limit in force (/proc/sys/net/core/optmem_max); nullopt when it
// cannot be read (systemd's ProcSubset=pid hides /proc/sys).
std::optional<size_t> read_optmem_max();

}  // namespace kbgp
