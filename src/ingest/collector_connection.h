// One TCP connection from the backend to a collector's BGP daemon, made from
// the device's registered source address. A libevent bufferevent on the
// loop thread; every method is loop-thread only.
//
// Flow control is expressed with the bufferevent's buffers:
//  * bytes for the collector queue in the output buffer; the owner stops
//    reading its gRPC stream while pending_output() is above a high mark and
//    resumes on Listener::on_collector_drained();
//  * bytes from the collector wait in the input buffer until the owner
//    read()s them; with an input limit set, libevent stops reading the
//    socket once that much is waiting (TCP back-pressure to the collector).
#pragma once

#include <event2/bufferevent.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/endpoint.h"

namespace kbgp::ingest {

class CollectorConnection {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void on_collector_connected() = 0;
    virtual void on_collector_readable() = 0;
    // The output buffer fell to the low mark (or emptied).
    virtual void on_collector_drained() = 0;
    // EOF, reset or a failed connect. Bytes already received stay readable.
    virtual void on_collector_closed(bool error, const std::string& reason) = 0;
  };

  // Output above this: stop reading the gRPC stream. At or below the low
  // mark: resume.
  static constexpr size_t kOutputHighMark = 1u << 20;
  static constexpr size_t kOutputLowMark = 512u << 10;

  CollectorConnection(event_base* base, Listener& listener);
  ~CollectorConnection();
  CollectorConnection(const CollectorConnection&) = delete;
  CollectorConnection& operator=(const CollectorConnection&) = delete;

  // Binds a non-blocking socket to `source` (port 0) and starts connecting
  // to `dest`. False (with `error`) when that fails at once; later failures
  // arrive as on_collector_closed(true, ...).
  bool connect(const Endpoint& source, const Endpoint& dest, std::string* error);

  bool connected() const { return connected_; }
  bool closed() const { return closed_; }

  void write(std::string_view bytes);
  size_t pending_output() const;
  size_t pending_input() const;
  // Takes up to `max` received bytes.
  std::string read(size_t max);
  // Puts bytes back in front of the received ones (a write that failed).
  void unread(std::string_view bytes);
  // Stop reading the socket while this many bytes wait unread; 0 = no limit.
  void set_input_limit(size_t bytes);
  // shutdown(SHUT_WR) once every queued byte is written.
  void shutdown_write();
  // Closes now: a reset (SO_LINGER 0) when `reset`, otherwise an orderly
  // close (queued output is dropped).
  void close(bool reset);

 private:
  struct BevFree {
    void operator()(bufferevent* b) const { bufferevent_free(b); }
  };
  static void on_read(bufferevent*, void* self);
  static void on_write(bufferevent*, void* self);
  static void on_event(bufferevent*, short what, void* self);
  void maybe_shutdown_write();

  event_base* base_;
  Listener& listener_;
  std::unique_ptr<bufferevent, BevFree> bev_;
  bool connected_ = false;
  bool closed_ = false;
  bool shutdown_wanted_ = false;
  bool shutdown_done_ = false;
};

}  // namespace kbgp::ingest
