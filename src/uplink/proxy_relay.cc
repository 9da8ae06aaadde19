#include "uplink/proxy_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_map>

#include "common/log.h"
#include "common/timeutil.h"
#include "uplink/proxy_dial.h"
#include "uplink/proxy_http.h"

namespace kbgp::uplink {

namespace {

constexpr size_t kBufferBytes = 64 * 1024;       // per direction and tunnel
constexpr size_t kMaxTunnels = 2048;             // gRPC opens one per connection
constexpr int64_t kSetupTimeoutNs = 15'000'000'000;  // CONNECT on both sides
constexpr int64_t kResolveCacheNs = 60'000'000'000;
constexpr int64_t kRepeatLogNs = 30'000'000'000;  // same failure logged again after
constexpr uint64_t kStopTag = ~0ULL;
constexpr uint64_t kListenTag = ~0ULL - 1;

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Compares "Basic xyz" values: scheme case-insensitive, credentials exactly,
// in time independent of where they differ.
bool same_authorization(std::string_view got, std::string_view want) {
  if (got.size() < 6 || want.size() < 6 || !iequals(got.substr(0, 6), want.substr(0, 6)))
    return false;
  got.remove_prefix(6);
  want.remove_prefix(6);
  while (!got.empty() && got.front() == ' ') got.remove_prefix(1);
  while (!want.empty() && want.front() == ' ') want.remove_prefix(1);
  unsigned char diff = got.size() == want.size() ? 0 : 1;
  for (size_t i = 0; i < want.size(); ++i)
    diff |= static_cast<unsigned char>(want[i] ^ (i < got.size() ? got[i] : 0));
  return diff == 0;
}

// A byte queue with a read offset; compacted when the front is consumed.
struct Buffer {
  std::string data;
  size_t off = 0;
  size_t pending() const { return data.size() - off; }
  size_t room() const { return kBufferBytes > pending() ? kBufferBytes - pending() : 0; }
  void consume(size_t n) {
    off += n;
    if (off == data.size()) {
      data.clear();
      off = 0;
    } else if (off > kBufferBytes) {
      data.erase(0, off);
      off = 0;
    }
  }
};

enum class State { ClientHead, Connecting, ProxyHead, Pumping };

struct Tunnel {
  uint64_t id = 0;
  State state = State::ClientHead;
  UniqueFd client;
  UniqueFd upstream;
  std::string head;  // a CONNECT head being read (from gRPC, then from the proxy)
  std::string target;
  Buffer to_upstream;
  Buffer to_client;
  bool client_eof = false;
  bool upstream_eof = false;
  bool client_shut = false;    // we shut down writing to the client
  bool upstream_shut = false;  // ... to the upstream
  int64_t deadline_ns = 0;
  std::vector<sockaddr_storage> addrs;
  size_t next_addr = 0;
  std::string connect_errors;
  uint32_t client_events = 0;
  uint32_t upstream_events = 0;
  bool upstream_registered = false;
};

}  // namespace

class ProxyRelay::Loop {
 public:
  Loop(ProxyRelay& relay) : relay_(relay) {}

  bool init(std::string* error) {
    epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) {
      *error = std::string("epoll_create1: ") + std::strerror(errno);
      return false;
    }
    return add(relay_.stop_fd_.get(), EPOLLIN, kStopTag, error) &&
           add(relay_.listen_fd_.get(), EPOLLIN, kListenTag, error);
  }

  void run() {
    for (;;) {
      int timeout = next_timeout_ms();
      epoll_event events[32];
      int n = ::epoll_wait(epoll_.get(), events, 32, timeout);
      if (n < 0 && errno != EINTR) {
        log::error("web proxy relay: epoll_wait failed", {{"error", std::strerror(errno)}});
        return;
      }
      for (int i = 0; i < n; ++i) {
        uint64_t tag = events[i].data.u64;
        if (tag == kStopTag) return;
        if (tag == kListenTag) {
          accept_clients();
          continue;
        }
        auto it = tunnels_.find(tag >> 1);
        if (it != tunnels_.end()) step(*it->second);
      }
      expire();
    }
  }

 private:
  bool add(int fd, uint32_t events, uint64_t tag, std::string* error) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0) return true;
    *error = std::string("epoll_ctl: ") + std::strerror(errno);
    return false;
  }

  void set_events(int fd, uint64_t tag, uint32_t want, uint32_t* have) {
    if (want == *have) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = tag;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
    *have = want;
  }

  int next_timeout_ms() const {
    int64_t now = monotonic_ns();
    int64_t next = now + 1'000'000'000;
    for (const auto& [id, t] : tunnels_)
      if (t->state != State::Pumping) next = std::min(next, t->deadline_ns);
    return static_cast<int>(std::clamp<int64_t>((next - now + 999'999) / 1'000'000, 0, 1000));
  }

  void accept_clients() {
    for (;;) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      UniqueFd fd(::accept4(relay_.listen_fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                            SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
          log::warn("web proxy relay: accept failed", {{"error", std::strerror(errno)}});
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        continue;
      }
      if (tunnels_.size() >= kMaxTunnels) {
        log_failure("full", "web proxy relay: too many tunnels; refusing a connection",
                    {{"tunnels", tunnels_.size()}});
        continue;
      }
      auto t = std::make_unique<Tunnel>();
      t->id = next_id_++;
      t->client = std::move(fd);
      t->deadline_ns = monotonic_ns() + kSetupTimeoutNs;
      std::string error;
      t->client_events = EPOLLIN;
      if (!add(t->client.get(), EPOLLIN, t->id << 1, &error)) {
        log::warn("web proxy relay: cannot watch a connection", {{"error", error}});
        continue;
      }
      tunnels_[t->id] = std::move(t);
    }
  }

  void close_tunnel(Tunnel& t) {
    if (t.state == State::Pumping) relay_.counters_.tunnels_open.fetch_sub(1);
    tunnels_.erase(t.id);  // closing the fds removes them from epoll
  }

  // Best effort: the answer to gRPC when the tunnel cannot be had.
  void refuse_client(Tunnel& t, int status, const char* reason) {
    std::string answer = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                         "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    ::send(t.client.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
    close_tunnel(t);
  }

  // Logs a failure at error level, or at debug when the same kind was logged
  // less than kRepeatLogNs ago (gRPC retries; the log must not flood).
  void log_failure(const std::string& kind, const std::string& message,
                   std::initializer_list<log::Field> fields, log::Level level = log::Level::Error) {
    int64_t now = monotonic_ns();
    Logged& last = last_logged_[kind];
    if (level == log::Level::Error) failing_ = true;
    if (last.at_ns && now - last.at_ns < kRepeatLogNs) {
      ++last.suppressed;
      log::write(log::Level::Debug, message, fields);
      return;
    }
    std::string text = message;
    if (last.suppressed)
      text += " (and " + std::to_string(last.suppressed) + " times since the last report)";
    last = Logged{now, 0};
    log::write(level, text, fields);
  }

  void step(Tunnel& t) {
    switch (t.state) {
      case State::ClientHead: return read_client_head(t);
      case State::Connecting: return finish_connect(t);
      case State::ProxyHead: return exchange_with_proxy(t);
      case State::Pumping: return pump(t);
    }
  }

  // ---- gRPC's CONNECT ---------------------------------------------------
  void read_client_head(Tunnel& t) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(t.client.get(), buf, sizeof buf, 0);
      if (n > 0) {
        t.head.append(buf, static_cast<size_t>(n));
        if (head_length(t.head) || t.head.size() > kMaxHeadBytes) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      close_tunnel(t);  // gRPC gave up (or error) before asking
      return;
    }
    size_t end = head_length(t.head);
    if (end == 0) {
      relay_.counters_.local_refusals.fetch_add(1);
      log_failure("local", "web proxy relay: refused a local connection", {{"reason", "head too long"}},
                  log::Level::Warn);
      return refuse_client(t, 400, "Bad Request");
    }
    auto req = parse_connect_request(std::string_view(t.head).substr(0, end));
    const auto& allowed = relay_.config_.allowed_targets;
    const char* why = nullptr;
    int status = 403;
    if (!req) {
      why = "not a CONNECT request";
      status = 400;
    } else if (!same_authorization(req->authorization, relay_.expected_authorization_)) {
      why = "missing or wrong relay secret";
      status = 407;
    } else if (std::find(allowed.begin(), allowed.end(), req->target) == allowed.end()) {
      why = "destination is not the backend";
    }
    if (why) {
      relay_.counters_.local_refusals.fetch_add(1);
      log_failure("local", "web proxy relay: refused a local connection",
                  {{"reason", why}, {"target", req ? req->target : std::string()}}, log::Level::Warn);
      return refuse_client(t, status, status == 407 ? "Proxy Authentication Required"
                                      : status == 400 ? "Bad Request" : "Forbidden");
    }
    t.target = req->target;
    t.to_upstream.data = t.head.substr(end);  // gRPC waits for 200; normally empty
    t.head.clear();
    set_events(t.client.get(), t.id << 1, 0, &t.client_events);
    t.addrs = upstream_addresses(&t.connect_errors);
    t.next_addr = 0;
    t.state = State::Connecting;
    try_next_address(t);
  }

  std::vector<sockaddr_storage> upstream_addresses(std::string* error) {
    int64_t now = monotonic_ns();
    if (cached_addrs_.empty() || now - resolved_at_ns_ > kResolveCacheNs) {
      const ProxyUrl& p = relay_.config_.upstream;
      auto addrs = resolve_host(p.host, p.port, error);
      if (!addrs.empty()) {
        cached_addrs_ = std::move(addrs);
        resolved_at_ns_ = now;
      }
    }
    return cached_addrs_;
  }

  // ---- to the operator's proxy --------------------------------------------
  void try_next_address(Tunnel& t) {
    while (t.next_addr < t.addrs.size()) {
      std::string error;
      const sockaddr_storage& a = t.addrs[t.next_addr++];
      UniqueFd fd = start_connect(a, &error);
      if (!fd) {
        t.connect_errors += (t.connect_errors.empty() ? "" : "; ") + error;
        continue;
      }
      if (t.upstream_registered) {
        t.upstream.reset();  // also leaves epoll
        t.upstream_registered = false;
      }
      t.upstream = std::move(fd);
      t.upstream_events = EPOLLOUT;
      if (!add(t.upstream.get(), EPOLLOUT, (t.id << 1) | 1, &error)) {
        t.connect_errors += "; " + error;
        continue;
      }
      t.upstream_registered = true;
      return;
    }
    cached_addrs_.clear();  // resolve again next time
    relay_.counters_.proxy_unreachable.fetch_add(1);
    const ProxyUrl& p = relay_.config_.upstream;
    log_failure("unreachable", "cannot reach the web proxy",
                {{"proxy", p.display()}, {"variable", "$" + p.variable}, {"target", t.target},
                 {"error", t.connect_errors}});
    refuse_client(t, 502, "Bad Gateway");
  }

  void finish_connect(Tunnel& t) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(t.upstream.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      t.connect_errors += (t.connect_errors.empty() ? "" : "; ") +
                          address_text(t.addrs[t.next_addr - 1]) + ": " + std::strerror(err);
      return try_next_address(t);
    }
    Buffer request;
    request.data = connect_request(t.target, relay_.config_.upstream, relay_.config_.user_agent);
    std::swap(request.data, t.to_upstream.data);
    t.to_upstream.data += request.data;  // the CONNECT first, then anything gRPC sent early
    t.state = State::ProxyHead;
    exchange_with_proxy(t);
  }

  void exchange_with_proxy(Tunnel& t) {
    // Only the CONNECT head goes out before the answer.
    size_t head_bytes = head_length(t.to_upstream.data);
    while (t.to_upstream.off < head_bytes) {
      ssize_t n = ::send(t.upstream.get(), t.to_upstream.data.data() + t.to_upstream.off,
                         head_bytes - t.to_upstream.off, MSG_NOSIGNAL);
      if (n > 0) {
        t.to_upstream.off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        set_events(t.upstream.get(), (t.id << 1) | 1, EPOLLOUT | EPOLLIN, &t.upstream_events);
        return;
      }
      return proxy_failed(t, std::string("sending CONNECT: ") + std::strerror(errno));
    }
    set_events(t.upstream.get(), (t.id << 1) | 1, EPOLLIN, &t.upstream_events);
    char buf[4096];
    while (head_length(t.head) == 0) {
      if (t.head.size() > kMaxHeadBytes) return proxy_failed(t, "response head too long");
      ssize_t n = ::recv(t.upstream.get(), buf, sizeof buf, 0);
      if (n > 0) {
        t.head.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      return proxy_failed(t, n == 0 ? "the proxy closed the connection before answering CONNECT"
                                    : std::string(std::strerror(errno)));
    }
    size_t end = head_length(t.head);
    auto resp = parse_response_head(std::string_view(t.head).substr(0, end));
    if (!resp) return proxy_failed(t, "the proxy did not answer CONNECT with HTTP");
    const ProxyUrl& p = relay_.config_.upstream;
    if (resp->status < 200 || resp->status > 299) {
      relay_.counters_.proxy_refusals.fetch_add(1);
      std::string message = "web proxy refused the CONNECT tunnel: " +
                            std::to_string(resp->status) +
                            (resp->reason.empty() ? "" : " " + resp->reason);
      log_failure("status " + std::to_string(resp->status), message,
                  {{"status", resp->status},
                   {"proxy", p.display()},
                   {"variable", "$" + p.variable},
                   {"target", t.target},
                   {"credentials", p.has_credentials ? "sent for user " + p.user : "none in the URL"},
                   {"hint", proxy_status_hint(resp->status)}});
      // gRPC sees the same status and reconnects with its backoff.
      return refuse_client(t, resp->status,
                           resp->reason.empty() ? "Refused" : resp->reason.c_str());
    }
    // Tunnel open: tell gRPC, pass on anything the proxy sent beyond the head.
    t.to_client.data = "HTTP/1.1 200 Connection established\r\n\r\n" + t.head.substr(end);
    t.head.clear();
    t.head.shrink_to_fit();
    t.to_upstream.data.erase(0, t.to_upstream.off);
    t.to_upstream.off = 0;
    t.state = State::Pumping;
    relay_.counters_.tunnels_opened.fetch_add(1);
    relay_.counters_.tunnels_open.fetch_add(1);
    if (failing_ || !logged_open_) {
      log::info("web proxy tunnel open", {{"proxy", p.display()}, {"target", t.target},
                                          {"status", resp->status}});
      failing_ = false;
      logged_open_ = true;
      last_logged_.clear();
    } else {
      log::debug("web proxy tunnel open", {{"proxy", p.display()}, {"target", t.target}});
    }
    pump(t);
  }

  void proxy_failed(Tunnel& t, const std::string& why) {
    relay_.counters_.proxy_unreachable.fetch_add(1);
    const ProxyUrl& p = relay_.config_.upstream;
    log_failure("exchange", "web proxy CONNECT failed",
                {{"proxy", p.display()}, {"target", t.target}, {"error", why}});
    refuse_client(t, 502, "Bad Gateway");
  }

  // ---- both ways ----------------------------------------------------------
  // Moves bytes src -> buf -> dst. False when the tunnel must close.
  static bool move(int src, int dst, Buffer& buf, bool& src_eof, bool& dst_shut) {
    char tmp[16384];
    while (!src_eof && buf.room() > 0) {
      ssize_t n = ::recv(src, tmp, std::min(sizeof tmp, buf.room()), 0);
      if (n > 0) {
        buf.data.append(tmp, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        src_eof = true;
        break;
      }
      if (errno == EAGAIN || errno == EINTR) break;
      return false;
    }
    while (buf.pending() > 0) {
      ssize_t n = ::send(dst, buf.data.data() + buf.off, buf.pending(), MSG_NOSIGNAL);
      if (n > 0) {
        buf.consume(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      return false;
    }
    if (src_eof && buf.pending() == 0 && !dst_shut) {
      ::shutdown(dst, SHUT_WR);
      dst_shut = true;
    }
    return true;
  }

  void pump(Tunnel& t) {
    if (!move(t.client.get(), t.upstream.get(), t.to_upstream, t.client_eof, t.upstream_shut) ||
        !move(t.upstream.get(), t.client.get(), t.to_client, t.upstream_eof, t.client_shut)) {
      return close_tunnel(t);
    }
    if (t.client_shut && t.upstream_shut) return close_tunnel(t);
    uint32_t c = 0, u = 0;
    if (!t.client_eof && t.to_upstream.room() > 0) c |= EPOLLIN;
    if (t.to_client.pending() > 0) c |= EPOLLOUT;
    if (!t.upstream_eof && t.to_client.room() > 0) u |= EPOLLIN;
    if (t.to_upstream.pending() > 0) u |= EPOLLOUT;
    set_events(t.client.get(), t.id << 1, c, &t.client_events);
    set_events(t.upstream.get(), (t.id << 1) | 1, u, &t.upstream_events);
  }

  void expire() {
    int64_t now = monotonic_ns();
    std::vector<uint64_t> late;
    for (const auto& [id, t] : tunnels_)
      if (t->state != State::Pumping && now > t->deadline_ns) late.push_back(id);
    for (uint64_t id : late) {
      Tunnel& t = *tunnels_[id];
      if (t.state == State::ClientHead) {
        close_tunnel(t);
        continue;
      }
      proxy_failed(t, t.state == State::Connecting ? "connect timed out"
                                                   : "no answer to CONNECT in time");
    }
  }

  struct Logged {
    int64_t at_ns = 0;
    uint64_t suppressed = 0;
  };

  ProxyRelay& relay_;
  UniqueFd epoll_;
  std::unordered_map<uint64_t, std::unique_ptr<Tunnel>> tunnels_;
  uint64_t next_id_ = 1;
  std::vector<sockaddr_storage> cached_addrs_;
  int64_t resolved_at_ns_ = 0;
  std::map<std::string, Logged> last_logged_;
  bool failing_ = false;
  bool logged_open_ = false;
};

std::unique_ptr<ProxyRelay> ProxyRelay::start(Config config, std::string* error) {
  std::unique_ptr<ProxyRelay> r(new ProxyRelay());
  r->config_ = std::move(config);
  std::string secret = random_hex(16);
  if (secret.empty()) {
    *error = "no random bytes for the relay secret";
    return nullptr;
  }
  r->expected_authorization_ = "Basic " + base64_encode("kbgp:" + secret);
  r->listen_fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!r->listen_fd_) {
    *error = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(r->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(r->listen_fd_.get(), 128) != 0 ||
      ::getsockname(r->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    *error = std::string("listening on 127.0.0.1: ") + std::strerror(errno);
    return nullptr;
  }
  r->port_ = ntohs(addr.sin_port);
  r->grpc_url_ = "http://kbgp:" + secret + "@127.0.0.1:" + std::to_string(r->port_);
  r->stop_fd_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!r->stop_fd_) {
    *error = std::string("eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  r->loop_ = std::make_unique<Loop>(*r);
  if (!r->loop_->init(error)) return nullptr;
  r->thread_ = std::thread([raw = r.get()] { raw->loop_->run(); });
  return r;
}

ProxyRelay::~ProxyRelay() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t n = ::write(stop_fd_.get(), &one, sizeof one);
    (void)n;
    thread_.join();
  }
}

}  // namespace kbgp::uplink
