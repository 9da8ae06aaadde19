// Log and metrics export (docs/export.md), on the uplink's exporter thread.
//
// Logs: every second the thread drains the log ring (common/log_ring.h) into
// a bounded queue (export_queue.h); a batch goes out when 256 KiB are queued
// or the oldest line waited 5 s: NDJSON, gzip, POST --log-export-url. A
// failed POST keeps the lines and retries with backoff (1 s doubling to
// 60 s); a refusal (4xx but 408/429) drops that batch. Metrics: every 60 s
// the Prometheus text of GET /metrics, plus the exporter's own counters,
// gzip, POST --metrics-export-url; a failed one is not retried (the next
// one is newer).
//
// Never on the data path: this thread only reads shared memory the data
// path writes without waiting (the ring, the control region's counters),
// and does its network I/O with deadlines.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/layout.h"
#include "common/log_ring.h"
#include "uplink/backoff.h"
#include "uplink/export_http.h"
#include "uplink/export_queue.h"
#include "uplink/export_url.h"

namespace kbgp::uplink {

struct ExportSettings {
  bool logs = false;  // the log ring is attached: export it
  std::string log_url;
  std::string metrics_url;
  std::string email;
  std::string token;
  std::string instance;
  std::string version;
  std::string ca_pem;  // --tls-ca-file contents, empty = the system store
};

class Exporter {
 public:
  // nullptr (and `error`) when a URL cannot be used or TLS cannot be set up.
  // `proxies` and `control` must outlive the exporter.
  static std::unique_ptr<Exporter> start(ExportSettings settings, const ProxySettings* proxies,
                                         const shm::ControlRegion* control, std::string* error);
  // Stops the thread; one last log batch is sent first if the backend was
  // reachable (bounded by 1 s).
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  struct Counters {
    std::atomic<uint64_t> lines_sent{0};
    std::atomic<uint64_t> dropped_queue_full{0};
    std::atomic<uint64_t> dropped_refused{0};
    std::atomic<uint64_t> dropped_invalid{0};
    std::atomic<uint64_t> batches_ok{0};
    std::atomic<uint64_t> batches_failed{0};
    std::atomic<uint64_t> metrics_ok{0};
    std::atomic<uint64_t> metrics_failed{0};
    std::atomic<uint64_t> bytes_sent{0};  // compressed bodies
  };
  const Counters& counters() const { return counters_; }

  // The exporter's own metrics in Prometheus text (added to each export).
  std::string own_metrics() const;

 private:
  Exporter() = default;
  void run();
  void drain_ring(int64_t now);
  void send_logs(int64_t now, int64_t deadline);
  void send_metrics(int64_t now);
  ExportClient::Headers headers(const char* content_type, uint64_t batch) const;
  void note_failure(bool logs, const std::string& what, const PostResult& r, int64_t retry_ns);

  ExportSettings settings_;
  std::optional<ExportUrl> log_url_;
  std::optional<ExportUrl> metrics_url_;
  const shm::ControlRegion* control_ = nullptr;
  std::unique_ptr<ExportClient> client_;
  std::unique_ptr<logring::Reader> reader_;
  LogQueue queue_;
  Backoff log_backoff_{1'000'000'000, 60'000'000'000};
  int64_t log_not_before_ns_ = 0;
  uint64_t log_batch_ = 0;
  uint64_t metrics_batch_ = 0;
  bool log_failing_ = false;
  bool metrics_failing_ = false;
  int64_t log_warned_ns_ = 0;
  int64_t metrics_warned_ns_ = 0;
  Counters counters_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool done_ = false;  // the thread finished (the last flush too)
  std::thread thread_;
};

}  // namespace kbgp::uplink
