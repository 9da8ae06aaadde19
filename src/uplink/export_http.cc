#include "uplink/export_http.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/timeutil.h"
#include "uplink/proxy_dial.h"
#include "uplink/proxy_http.h"

namespace kbgp::uplink {

namespace {

constexpr size_t kMaxBodyKept = 512;

std::string openssl_error(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return what + (e ? std::string(": ") + buf : "");
}

bool is_ip_address(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Blocking socket I/O with the deadline as send/receive timeouts.
void set_timeouts(int fd, int64_t deadline) {
  int64_t left = std::max<int64_t>(deadline - monotonic_ns(), 1'000'000);
  timeval tv{static_cast<time_t>(left / 1'000'000'000),
             static_cast<suseconds_t>((left % 1'000'000'000) / 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string printable_prefix(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxBodyKept)) {
    auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : ' ';
  }
  return out;
}

// One connection, plaintext or TLS.
class Stream {
 public:
  Stream(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Stream() {
    if (ssl_) SSL_free(ssl_);
  }
  bool write_all(std::string_view data) {
    while (!data.empty()) {
      int n;
      if (ssl_) {
        n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 20)));
      } else {
        n = static_cast<int>(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL));
        if (n < 0 && errno == EINTR) continue;
      }
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Bytes read, 0 at EOF, -1 on error or timeout.
  int read_some(char* buf, int size) {
    if (ssl_) {
      int n = SSL_read(ssl_, buf, size);
      if (n > 0) return n;
      return SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    for (;;) {
      ssize_t n = ::recv(fd_, buf, static_cast<size_t>(size), 0);
      if (n < 0 && errno == EINTR) continue;
      return static_cast<int>(n);
    }
  }

 private:
  int fd_;
  SSL* ssl_;
};

}  // namespace

std::string post_head(const ExportUrl& url, const ExportClient::Headers& headers,
                      size_t content_length, std::string_view user_agent) {
  bool default_port = url.port == (url.tls ? 443 : 80);
  std::string head = "POST " + url.path + " HTTP/1.1\r\nHost: " +
                     (default_port ? (url.host.find(':') != std::string::npos ? "[" + url.host + "]"
                                                                              : url.host)
                                   : url.host_port()) +
                     "\r\nUser-Agent: " + std::string(user_agent) +
                     "\r\nContent-Length: " + std::to_string(content_length) +
                     "\r\nConnection: close\r\n";
  for (const auto& [name, value] : headers) head += name + ": " + value + "\r\n";
  return head + "\r\n";
}

std::unique_ptr<ExportClient> ExportClient::create(const std::string& ca_pem,
                                                   const ProxySettings* proxies,
                                                   std::string user_agent, std::string* error) {
  std::unique_ptr<ExportClient> c(new ExportClient());
  c->proxies_ = proxies;
  c->user_agent_ = std::move(user_agent);
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!c->ctx_) {
    *error = openssl_error("SSL_CTX_new");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
  if (ca_pem.empty()) {
    if (SSL_CTX_set_default_verify_paths(c->ctx_) != 1) {
      *error = openssl_error("the system's CA certificates");
      return nullptr;
    }
    return c;
  }
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509_STORE* store = SSL_CTX_get_cert_store(c->ctx_);
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++added;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the end of the PEM data reads as an error
  if (added == 0) {
    *error = "the CA file holds no usable certificate";
    return nullptr;
  }
  return c;
}

ExportClient::~ExportClient() {
  if (ctx_) SSL_CTX_free(ctx_);
}

void ExportClient::cancel() {
  cancelled_.store(true);
  std::lock_guard lock(fd_mu_);
  // Under the lock: the descriptor cannot have been closed (and its number
  // reused by another connection of this process) meanwhile.
  if (active_fd_ >= 0) ::shutdown(active_fd_, SHUT_RDWR);
}

PostResult ExportClient::post(const ExportUrl& url, const Headers& headers, std::string_view body,
                              int64_t deadline) {
  PostResult r;
  if (cancelled_.load()) {
    r.error = "cancelled";
    return r;
  }
  const ProxyUrl* proxy = proxies_ ? proxies_->for_target(url.host, url.port, url.tls) : nullptr;
  DialResult d = dial(proxy, url.host, url.port, user_agent_, deadline, &cancelled_);
  if (!d.fd) {
    r.error = cancelled_.load() ? "cancelled" : d.error;
    r.proxy_status = d.proxy_status;
    return r;
  }
  set_timeouts(d.fd.get(), deadline);
  {
    std::lock_guard lock(fd_mu_);
    active_fd_ = d.fd.get();
  }
  if (cancelled_.load()) ::shutdown(d.fd.get(), SHUT_RDWR);
  r = post_on(d.fd.get(), url, headers, body);
  {
    std::lock_guard lock(fd_mu_);
    active_fd_ = -1;
  }
  return r;  // d.fd closes here, after it left active_fd_
}

PostResult ExportClient::post_on(int fd, const ExportUrl& url, const Headers& headers,
                                 std::string_view body) {
  PostResult r;
  SSL* ssl = nullptr;
  if (url.tls) {
    ssl = SSL_new(ctx_);
    if (!ssl) {
      r.error = openssl_error("SSL_new");
      return r;
    }
    SSL_set_fd(ssl, fd);
    if (is_ip_address(url.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, url.host.c_str());
      SSL_set1_host(ssl, url.host.c_str());
    }
  }
  Stream stream(fd, ssl);
  if (ssl && SSL_connect(ssl) != 1) {
    long verify = SSL_get_verify_result(ssl);
    r.error = verify != X509_V_OK
                  ? std::string("TLS: certificate of ") + url.host + " not accepted: " +
                        X509_verify_cert_error_string(verify)
                  : openssl_error("TLS handshake with " + url.host_port() + " failed");
    ERR_clear_error();
    return r;
  }
  std::string head = post_head(url, headers, body.size(), user_agent_);
  if (!stream.write_all(head) || !stream.write_all(body)) {
    r.error = "sending the request failed (" + std::string(std::strerror(errno)) + ")";
    ERR_clear_error();
    return r;
  }
  std::string response;
  char buf[4096];
  while (head_length(response) == 0) {
    if (response.size() > kMaxHeadBytes) {
      r.error = "response head too long";
      return r;
    }
    int n = stream.read_some(buf, sizeof buf);
    if (n <= 0) {
      r.error = n == 0 ? "the server closed the connection without an answer"
                       : "no answer in time";
      ERR_clear_error();
      return r;
    }
    response.append(buf, static_cast<size_t>(n));
  }
  size_t end = head_length(response);
  auto parsed = parse_response_head(std::string_view(response).substr(0, end));
  if (!parsed) {
    r.error = "the answer is not HTTP";
    return r;
  }
  r.status = parsed->status;
  r.error = parsed->reason;
  // A little of the body, for the log line of a refusal.
  std::string rest = response.substr(end);
  if (rest.size() < kMaxBodyKept && (r.status < 200 || r.status > 299)) {
    int n = stream.read_some(buf, static_cast<int>(std::min(sizeof buf, kMaxBodyKept - rest.size())));
    if (n > 0) rest.append(buf, static_cast<size_t>(n));
  }
  r.body = printable_prefix(rest);
  if (ssl) SSL_shutdown(ssl);
  ERR_clear_error();
  return r;
}

}  // namespace kbgp::uplink
