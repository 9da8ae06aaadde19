// kbgp-ingest's export endpoint (--export-listen, --export-dir): HTTP/1.1
// over TLS (the same certificate and key as the gRPC server) or plaintext
// with --plaintext, served by libevent's evhttp on a thread and event base
// of its own. POST .../logs and .../metrics go to ExportStore
// (export_store.h); bodies above kMaxExportBody are refused by evhttp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/endpoint.h"
#include "ingest/export_store.h"

struct event_base;
struct evhttp;
struct evhttp_request;
struct bufferevent;
typedef struct ssl_ctx_st SSL_CTX;

namespace kbgp::ingest {

class ExportServer {
 public:
  // Binds `listen` and starts serving. `cert_pem`/`key_pem` empty: plaintext.
  // Sets `bound` to the address with the port actually bound.
  static std::unique_ptr<ExportServer> start(const Endpoint& listen, const std::string& cert_pem,
                                             const std::string& key_pem,
                                             std::unique_ptr<ExportStore> store, Endpoint* bound,
                                             std::string* error);
  ~ExportServer();  // stops the loop and joins the thread
  ExportServer(const ExportServer&) = delete;
  ExportServer& operator=(const ExportServer&) = delete;

 private:
  ExportServer() = default;
  static void on_request(evhttp_request* req, void* self);
  static bufferevent* make_tls_bev(event_base* base, void* self);

  std::unique_ptr<ExportStore> store_;
  SSL_CTX* ssl_ctx_ = nullptr;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  std::thread thread_;
};

}  // namespace kbgp::ingest
