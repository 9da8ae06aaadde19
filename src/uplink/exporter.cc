#include "uplink/exporter.h"

#include <jansson.h>

#include <cinttypes>
#include <cstdio>

#include "admin/metrics_text.h"
#include "common/gzip.h"
#include "common/log.h"
#include "common/timeutil.h"

namespace kbgp::uplink {

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kPollNs = kSecond;             // ring drained this often
constexpr int64_t kFlushDelayNs = 5 * kSecond;   // a line waits at most this long (when all is well)
constexpr size_t kFlushBytes = 256 * 1024;       // or until this much is queued
constexpr int64_t kMetricsPeriodNs = 60 * kSecond;
constexpr int64_t kFirstMetricsNs = 10 * kSecond;
constexpr int64_t kPostTimeoutNs = 15 * kSecond;
constexpr int64_t kFinalFlushNs = kSecond;
constexpr int64_t kWarnAgainNs = 300 * kSecond;  // "still failing" at most this often
constexpr size_t kDrainPerPass = 4096;

// A ring record is anyone's bytes: only a JSON object goes on.
bool valid_json_object(const std::string& text) {
  json_error_t err;
  json_t* v = json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, &err);
  bool ok = v && json_is_object(v);
  json_decref(v);
  return ok;
}

bool permanent_refusal(int status) {
  return status >= 400 && status < 500 && status != 408 && status != 429;
}

}  // namespace

std::unique_ptr<Exporter> Exporter::start(ExportSettings settings, const ProxySettings* proxies,
                                          const shm::ControlRegion* control, std::string* error) {
  std::unique_ptr<Exporter> e(new Exporter());
  e->settings_ = std::move(settings);
  e->control_ = control;
  if (e->settings_.logs) {
    e->log_url_ = parse_export_url(e->settings_.log_url, error);
    if (!e->log_url_) {
      *error = "--log-export-url: " + *error;
      return nullptr;
    }
    logring::Region* ring = logring::attached();
    if (!ring) {
      *error = "log export is on but no log ring was handed over";
      return nullptr;
    }
    e->reader_ = std::make_unique<logring::Reader>(ring);
  }
  if (!e->settings_.metrics_url.empty()) {
    e->metrics_url_ = parse_export_url(e->settings_.metrics_url, error);
    if (!e->metrics_url_) {
      *error = "--metrics-export-url: " + *error;
      return nullptr;
    }
  }
  if (!e->log_url_ && !e->metrics_url_) return e;  // nothing to do: no thread
  e->client_ = ExportClient::create(e->settings_.ca_pem, proxies,
                                    "kbgp/" + e->settings_.version, error);
  if (!e->client_) return nullptr;
  e->thread_ = std::thread([raw = e.get()] { raw->run(); });
  log::info("export started", {{"logs", e->log_url_ ? e->log_url_->text : "off"},
                               {"metrics", e->metrics_url_ ? e->metrics_url_->text : "off"}});
  return e;
}

Exporter::~Exporter() {
  if (!thread_.joinable()) return;
  std::unique_lock lock(mu_);
  stop_ = true;
  wake_.notify_all();
  // A post in progress (or the last flush) gets a moment; then it is cut:
  // the uplink must stop within the supervisor's grace period.
  if (!wake_.wait_for(lock, std::chrono::milliseconds(1500), [this] { return done_; }))
    client_->cancel();
  lock.unlock();
  thread_.join();
}

ExportClient::Headers Exporter::headers(const char* content_type, uint64_t batch) const {
  uint64_t dropped = (reader_ ? reader_->dropped() : 0) + counters_.dropped_queue_full.load() +
                     counters_.dropped_refused.load() + counters_.dropped_invalid.load();
  return {{"Content-Type", content_type},
          {"Content-Encoding", "gzip"},
          {"X-CH-Auth-Email", settings_.email},
          {"X-CH-Auth-API-Token", settings_.token},
          {"X-Kbgp-Instance", settings_.instance},
          {"X-Kbgp-Batch", std::to_string(batch)},
          {"X-Kbgp-Dropped", std::to_string(dropped)}};
}

void Exporter::run() {
  int64_t next_metrics = monotonic_ns() + kFirstMetricsNs;
  for (;;) {
    int64_t now = monotonic_ns();
    if (reader_) drain_ring(now);
    if (log_url_ && queue_.lines() > 0 && now >= log_not_before_ns_ &&
        (queue_.bytes() >= kFlushBytes || now - queue_.oldest_mono_ns() >= kFlushDelayNs))
      send_logs(now, now + kPostTimeoutNs);
    if (metrics_url_ && now >= next_metrics) {
      send_metrics(now);
      next_metrics = monotonic_ns() + kMetricsPeriodNs;
    }
    std::unique_lock lock(mu_);
    if (wake_.wait_for(lock, std::chrono::nanoseconds(kPollNs), [this] { return stop_; })) break;
  }
  // Stopping: what is queued goes out once more if the backend was
  // reachable, within a short bound (the uplink has 5 s to stop).
  if (log_url_ && !log_failing_) {
    int64_t now = monotonic_ns();
    drain_ring(now);
    if (queue_.lines() > 0) send_logs(now, now + kFinalFlushNs);
  }
  std::lock_guard lock(mu_);
  done_ = true;
  wake_.notify_all();
}

void Exporter::drain_ring(int64_t now) {
  reader_->drain(kDrainPerPass, now, [&](logring::Line&& line) {
    if (!valid_json_object(line.text)) {
      counters_.dropped_invalid.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    uint64_t before = queue_.dropped();
    queue_.push(std::move(line.text), now);
    counters_.dropped_queue_full.fetch_add(queue_.dropped() - before, std::memory_order_relaxed);
  });
}

void Exporter::send_logs(int64_t now, int64_t deadline) {
  LogQueue::Batch batch = queue_.peek_batch();
  if (batch.empty()) return;
  std::string body = gzip_compress(batch.body);
  uint64_t seq = ++log_batch_;
  PostResult r = client_->post(*log_url_, headers("application/x-ndjson", seq), body, deadline);
  if (r.status >= 200 && r.status <= 299) {
    queue_.pop(batch.lines);
    counters_.lines_sent.fetch_add(batch.lines, std::memory_order_relaxed);
    counters_.batches_ok.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_sent.fetch_add(body.size(), std::memory_order_relaxed);
    log_backoff_.reset();
    log_not_before_ns_ = 0;
    if (log_failing_) {
      log_failing_ = false;
      log::info("log export works again", {{"url", log_url_->text},
                                           {"lines", batch.lines},
                                           {"queued", queue_.lines()}});
    }
    return;
  }
  if (client_->cancelled()) return;  // stopping: not a failure worth a line
  counters_.batches_failed.fetch_add(1, std::memory_order_relaxed);
  if (permanent_refusal(r.status)) {
    queue_.pop(batch.lines);  // the same batch would be refused again
    counters_.dropped_refused.fetch_add(batch.lines, std::memory_order_relaxed);
  }
  int64_t delay = log_backoff_.next_delay_ns();
  log_not_before_ns_ = monotonic_ns() + delay;
  note_failure(true, "log export", r, delay);
  (void)now;
}

std::string Exporter::own_metrics() const {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto sample = [&](const char* name, const char* labels, uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%" PRIu64, v);
    out += std::string(name) + labels + " " + buf + "\n";
  };
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  family("kbgp_log_export_lines_total", "counter", "Log lines the export backend accepted.");
  sample("kbgp_log_export_lines_total", "", get(counters_.lines_sent));
  family("kbgp_log_export_dropped_total", "counter",
         "Log lines dropped before export, by reason (the oldest go first).");
  sample("kbgp_log_export_dropped_total", "{reason=\"ring_overwritten\"}",
         reader_ ? reader_->dropped() : 0);
  sample("kbgp_log_export_dropped_total", "{reason=\"queue_full\"}", get(counters_.dropped_queue_full));
  sample("kbgp_log_export_dropped_total", "{reason=\"refused\"}", get(counters_.dropped_refused));
  sample("kbgp_log_export_dropped_total", "{reason=\"invalid\"}", get(counters_.dropped_invalid));
  family("kbgp_log_export_truncated_total", "counter",
         "Log lines too long for the log ring, exported shortened.");
  sample("kbgp_log_export_truncated_total", "", reader_ ? reader_->truncated() : 0);
  family("kbgp_log_export_batches_total", "counter", "Log batches posted, by result.");
  sample("kbgp_log_export_batches_total", "{result=\"ok\"}", get(counters_.batches_ok));
  sample("kbgp_log_export_batches_total", "{result=\"failed\"}", get(counters_.batches_failed));
  family("kbgp_metrics_export_total", "counter", "Metrics exports posted, by result.");
  sample("kbgp_metrics_export_total", "{result=\"ok\"}", get(counters_.metrics_ok));
  sample("kbgp_metrics_export_total", "{result=\"failed\"}", get(counters_.metrics_failed));
  family("kbgp_export_bytes_total", "counter", "Compressed bytes of accepted export bodies.");
  sample("kbgp_export_bytes_total", "", get(counters_.bytes_sent));
  return out;
}

void Exporter::send_metrics(int64_t now) {
  admin::Now when{realtime_ns(), now};
  std::string text = admin::metrics_text(*control_, when) + own_metrics();
  std::string body = gzip_compress(text);
  PostResult r = client_->post(*metrics_url_,
                               headers("text/plain; version=0.0.4; charset=utf-8", ++metrics_batch_),
                               body, monotonic_ns() + kPostTimeoutNs);
  if (r.status >= 200 && r.status <= 299) {
    counters_.metrics_ok.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_sent.fetch_add(body.size(), std::memory_order_relaxed);
    if (metrics_failing_) {
      metrics_failing_ = false;
      log::info("metrics export works again", {{"url", metrics_url_->text}});
    }
    return;
  }
  if (client_->cancelled()) return;
  counters_.metrics_failed.fetch_add(1, std::memory_order_relaxed);
  note_failure(false, "metrics export", r, kMetricsPeriodNs);
}

// The first failure (and then one every kWarnAgainNs) at warn/error; the
// others at debug: an unreachable backend must not fill the journal.
void Exporter::note_failure(bool logs, const std::string& what, const PostResult& r,
                            int64_t retry_ns) {
  bool& failing = logs ? log_failing_ : metrics_failing_;
  int64_t& warned = logs ? log_warned_ns_ : metrics_warned_ns_;
  const ExportUrl& url = logs ? *log_url_ : *metrics_url_;
  int64_t now = monotonic_ns();
  bool loud = !failing || now - warned >= kWarnAgainNs;
  failing = true;
  std::string message;
  std::string hint;
  if (r.status == 401 || r.status == 403) {
    message = what + " refused: " + std::to_string(r.status) + " " + r.error;
    hint = "check --email and --token (KENTIK_API_EMAIL, KENTIK_API_TOKEN)";
  } else if (r.status) {
    message = what + " failed: the backend answered " + std::to_string(r.status) + " " + r.error;
  } else {
    message = what + " failed: " + r.error;
    if (r.proxy_status) hint = "see the web proxy's answer above";
  }
  if (!loud) {
    log::debug(message, {{"url", url.text}, {"retry-in-s", retry_ns / kSecond}});
    return;
  }
  warned = now;
  log::Level level = (r.status == 401 || r.status == 403) ? log::Level::Error : log::Level::Warn;
  log::write(level, message,
             {{"url", url.text},
              {"status", r.status},
              {"response", r.body},
              {"hint", hint},
              {"retry-in-s", retry_ns / kSecond},
              {"queued-lines", logs ? queue_.lines() : 0}});
}

}  // namespace kbgp::uplink
