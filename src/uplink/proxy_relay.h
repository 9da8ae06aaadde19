// The uplink's CONNECT relay: gRPC's way to the operator's web proxy.
//
//   gRPC ──CONNECT target──▶ relay (127.0.0.1:ephemeral, in the uplink)
//        ──CONNECT target + Proxy-Authorization: Basic──▶ web proxy ──▶ backend
//
// gRPC gets the channel argument grpc.http_proxy = http://kbgp:SECRET@
// 127.0.0.1:PORT and sees no proxy variable (the uplink removes them from
// its environment). The relay accepts only CONNECT to the configured
// target(s) and only with the per-process random SECRET, so another local
// user cannot borrow the operator's proxy credentials through it. It then
// connects to the real proxy, sends CONNECT with the percent-decoded
// credentials, checks for 2xx, answers gRPC 200 and copies bytes both ways
// (TLS passes through untouched; the certificate check stays gRPC's). A
// refusal is logged with the proxy's status (e.g. 407) and passed on to
// gRPC, which then reconnects with its backoff (0.5 s doubling to 30 s).
//
// One thread, one epoll, non-blocking sockets, 64 KiB per direction and
// tunnel (reading stops when it is full, so TCP flow control holds). Only
// resolving a proxy given by name may block that thread (the answer is
// cached for a minute).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "uplink/proxy_config.h"

namespace kbgp::uplink {

class ProxyRelay {
 public:
  struct Config {
    ProxyUrl upstream;                         // the operator's proxy
    std::vector<std::string> allowed_targets;  // "host:port" gRPC may CONNECT to
    std::string user_agent;                    // sent to the proxy
  };

  // Listens on 127.0.0.1 (an ephemeral port) and starts the relay thread.
  static std::unique_ptr<ProxyRelay> start(Config config, std::string* error);
  ~ProxyRelay();  // stops the thread, closes every tunnel
  ProxyRelay(const ProxyRelay&) = delete;
  ProxyRelay& operator=(const ProxyRelay&) = delete;

  // The value for gRPC's grpc.http_proxy channel argument (holds the secret).
  const std::string& grpc_proxy_url() const { return grpc_url_; }
  uint16_t port() const { return port_; }

  struct Counters {
    std::atomic<uint64_t> tunnels_opened{0};
    std::atomic<uint64_t> proxy_refusals{0};  // non-2xx answers
    std::atomic<uint64_t> proxy_unreachable{0};
    std::atomic<uint64_t> local_refusals{0};  // bad CONNECT from a local client
    std::atomic<uint64_t> tunnels_open{0};
  };
  const Counters& counters() const { return counters_; }

  class Loop;  // the thread's state (proxy_relay.cc)

 private:
  ProxyRelay() = default;

  Config config_;
  std::string expected_authorization_;
  std::string grpc_url_;
  uint16_t port_ = 0;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;  // eventfd
  Counters counters_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace kbgp::uplink
