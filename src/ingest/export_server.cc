#include "ingest/export_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstring>

#include "common/log.h"

namespace kbgp::ingest {

namespace {

std::string header(evkeyvalq* headers, const char* name) {
  const char* v = evhttp_find_header(headers, name);
  return v ? v : "";
}

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

SSL_CTX* server_context(const std::string& cert_pem, const std::string& key_pem, std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    *error = "SSL_CTX_new: " + openssl_error();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  bool ok = cert && SSL_CTX_use_certificate(ctx, cert) == 1;
  // The rest of the chain, if any.
  while (ok) {
    X509* extra = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    if (!extra) break;
    if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) X509_free(extra);
  }
  X509_free(cert);
  BIO_free(cb);
  ERR_clear_error();
  BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  ok = ok && key && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  BIO_free(kb);
  if (!ok) {
    *error = "the certificate or key cannot be used for the export endpoint: " + openssl_error();
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace

bufferevent* ExportServer::make_tls_bev(event_base* base, void* arg) {
  auto* self = static_cast<ExportServer*>(arg);
  SSL* ssl = SSL_new(self->ssl_ctx_);
  return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                        BEV_OPT_CLOSE_ON_FREE);
}

void ExportServer::on_request(evhttp_request* req, void* arg) {
  auto* self = static_cast<ExportServer*>(arg);
  ExportRequest rq;
  switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_POST: rq.method = "POST"; break;
    case EVHTTP_REQ_GET: rq.method = "GET"; break;
    default: rq.method = "OTHER"; break;
  }
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* path = uri ? evhttp_uri_get_path(uri) : nullptr;
  rq.path = path ? path : "/";
  evkeyvalq* in = evhttp_request_get_input_headers(req);
  rq.content_type = header(in, "Content-Type");
  rq.content_encoding = header(in, "Content-Encoding");
  rq.email = header(in, "X-CH-Auth-Email");
  rq.token = header(in, "X-CH-Auth-API-Token");
  rq.instance = header(in, "X-Kbgp-Instance");
  rq.batch = header(in, "X-Kbgp-Batch");
  rq.dropped = header(in, "X-Kbgp-Dropped");
  evbuffer* body = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(body);
  rq.body.resize(n);
  if (n) evbuffer_copyout(body, rq.body.data(), n);

  ExportAnswer a = self->store_->handle(rq);
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Content-Type", "application/json");
  evbuffer* reply = evbuffer_new();
  evbuffer_add(reply, a.json.data(), a.json.size());
  evhttp_send_reply(req, a.status, a.reason.c_str(), reply);
  evbuffer_free(reply);
}

std::unique_ptr<ExportServer> ExportServer::start(const Endpoint& listen, const std::string& cert_pem,
                                                  const std::string& key_pem,
                                                  std::unique_ptr<ExportStore> store,
                                                  Endpoint* bound, std::string* error) {
  std::unique_ptr<ExportServer> s(new ExportServer());
  s->store_ = std::move(store);
  if (!cert_pem.empty()) {
    s->ssl_ctx_ = server_context(cert_pem, key_pem, error);
    if (!s->ssl_ctx_) return nullptr;
  }
  evthread_use_pthreads();  // the destructor breaks the loop from another thread
  s->base_ = event_base_new();
  s->http_ = s->base_ ? evhttp_new(s->base_) : nullptr;
  if (!s->http_) {
    *error = "cannot create the HTTP server";
    return nullptr;
  }
  evhttp_set_max_body_size(s->http_, kMaxExportBody);
  evhttp_set_max_headers_size(s->http_, 16 * 1024);
  evhttp_set_timeout(s->http_, 30);
  evhttp_set_allowed_methods(s->http_, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
  evhttp_set_gencb(s->http_, &ExportServer::on_request, s.get());
  if (s->ssl_ctx_) evhttp_set_bevcb(s->http_, &ExportServer::make_tls_bev, s.get());
  std::string addr = listen.address_string();
  evhttp_bound_socket* sock = evhttp_bind_socket_with_handle(s->http_, addr.c_str(), listen.port);
  if (!sock) {
    *error = "cannot listen on " + listen.to_string() + ": " + std::strerror(errno);
    return nullptr;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(evhttp_bound_socket_get_fd(sock), reinterpret_cast<sockaddr*>(&ss), &len);
  *bound = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
  s->thread_ = std::thread([base = s->base_] { event_base_dispatch(base); });
  return s;
}

ExportServer::~ExportServer() {
  if (thread_.joinable()) {
    event_base_loopbreak(base_);  // libevent's pthread locking is on (EventLoop)
    thread_.join();
  }
  if (http_) evhttp_free(http_);
  if (base_) event_base_free(base_);
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
}

}  // namespace kbgp::ingest
