// The export client: one HTTP/1.1 POST per batch, over TLS (OpenSSL, the
// library gRPC itself uses here) or plaintext for http:// URLs, through the
// operator's web proxy when HTTPS_PROXY & co. say so (CONNECT, the same
// rules as gRPC's connections: proxy_config.h). Blocking with a deadline; it
// runs on the exporter's own thread, never on the data path.
//
// TLS: the server certificate is verified against --tls-ca-file when one
// was given (the same roots as for the target), else the system store, and
// against the URL's host name (or IP address).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uplink/export_url.h"
#include "uplink/proxy_config.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace kbgp::uplink {

struct PostResult {
  int status = 0;        // HTTP status; 0 when there was no answer
  int proxy_status = 0;  // the web proxy's status when it refused the tunnel
  std::string error;     // why there was no answer, or the answer's reason phrase
  std::string body;      // start of the response body (for log lines), printable only
};

class ExportClient {
 public:
  // `ca_pem`: PEM roots, empty = the system store. nullptr (and `error`)
  // when TLS cannot be set up.
  static std::unique_ptr<ExportClient> create(const std::string& ca_pem,
                                              const ProxySettings* proxies,
                                              std::string user_agent, std::string* error);
  ~ExportClient();
  ExportClient(const ExportClient&) = delete;
  ExportClient& operator=(const ExportClient&) = delete;

  using Headers = std::vector<std::pair<std::string, std::string>>;
  // POSTs `body` to `url`, giving up at `deadline_mono_ns`.
  PostResult post(const ExportUrl& url, const Headers& headers, std::string_view body,
                  int64_t deadline_mono_ns);
  // From another thread: makes a post() in progress (and every later one)
  // give up at once, e.g. when the uplink stops.
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  ExportClient() = default;
  PostResult post_on(int fd, const ExportUrl& url, const Headers& headers, std::string_view body);

  std::atomic<bool> cancelled_{false};
  std::mutex fd_mu_;
  int active_fd_ = -1;  // the connection of the post() in progress, under fd_mu_
  SSL_CTX* ctx_ = nullptr;
  const ProxySettings* proxies_ = nullptr;
  std::string user_agent_;
};

// The request head of a POST (exposed for tests).
std::string post_head(const ExportUrl& url, const ExportClient::Headers& headers,
                      size_t content_length, std::string_view user_agent);

}  // namespace kbgp::uplink
