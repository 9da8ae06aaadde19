#include "ingest/export_store.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/gzip.h"
#include "common/log.h"
#include "common/timeutil.h"

namespace kbgp::ingest {

namespace {

ExportAnswer answer(int status, const char* reason, const std::string& message) {
  json_t* o = json_object();
  json_object_set_new(o, status < 300 ? "result" : "error", json_string(message.c_str()));
  char* text = json_dumps(o, JSON_COMPACT);
  ExportAnswer a{status, reason, text ? text : "{}"};
  free(text);
  json_decref(o);
  return a;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Instance ids and batch numbers go into file names: keep [0-9a-zA-Z-] only.
std::string safe_name(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max))
    out += ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-')
               ? c
               : '_';
  return out.empty() ? "unknown" : out;
}

bool make_dir(const std::string& path, std::string* error) {
  if (::mkdir(path.c_str(), 0750) == 0 || errno == EEXIST) return true;
  *error = "cannot create " + path + ": " + std::strerror(errno);
  return false;
}

bool write_file(const std::string& path, const std::string& data, std::string* error) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    *error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = "cannot write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot store " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<ExportStore> ExportStore::open(
    const std::string& dir, std::function<std::shared_ptr<const Credentials>()> credentials,
    std::string* error) {
  std::unique_ptr<ExportStore> s(new ExportStore());
  s->dir_ = dir;
  s->credentials_ = std::move(credentials);
  if (!make_dir(dir, error) || !make_dir(dir + "/logs", error) ||
      !make_dir(dir + "/metrics", error))
    return nullptr;
  return s;
}

ExportAnswer ExportStore::handle(const ExportRequest& rq) {
  bool logs = ends_with(rq.path, "/logs");
  bool metrics = ends_with(rq.path, "/metrics");
  if (!logs && !metrics) return answer(404, "Not Found", "unknown export path " + rq.path);
  if (rq.method != "POST") return answer(405, "Method Not Allowed", "use POST");
  auto creds = credentials_();
  if (!creds || !creds->check(rq.email, rq.token)) {
    log::warn("export refused: bad credentials",
              {{"path", rq.path}, {"email", rq.email}, {"instance", rq.instance}});
    return answer(401, "Unauthorized", "bad X-CH-Auth-Email / X-CH-Auth-API-Token");
  }
  std::string body;
  if (rq.content_encoding == "gzip") {
    std::string error;
    auto plain = gzip_decompress(rq.body, kMaxExportDecompressed, &error);
    if (!plain) {
      bool too_big = error.find("larger") != std::string::npos;
      return answer(too_big ? 413 : 400, too_big ? "Payload Too Large" : "Bad Request", error);
    }
    body = std::move(*plain);
  } else if (rq.content_encoding.empty() || rq.content_encoding == "identity") {
    body = rq.body;
  } else {
    return answer(415, "Unsupported Media Type",
                  "unsupported Content-Encoding " + rq.content_encoding + " (gzip or identity)");
  }
  size_t lines = 0;
  if (logs) {
    if (rq.content_type.rfind("application/x-ndjson", 0) != 0)
      return answer(415, "Unsupported Media Type", "logs are application/x-ndjson");
    size_t start = 0;
    while (start < body.size()) {
      size_t nl = body.find('\n', start);
      if (nl == std::string::npos) nl = body.size();
      if (nl > start) {
        json_error_t err;
        json_t* v = json_loadb(body.data() + start, nl - start, 0, &err);
        bool ok = v && json_is_object(v);
        json_decref(v);
        if (!ok)
          return answer(400, "Bad Request",
                        "line " + std::to_string(lines + 1) + " is not a JSON object");
        ++lines;
      }
      start = nl + 1;
    }
  } else {
    if (rq.content_type.rfind("text/plain", 0) != 0)
      return answer(415, "Unsupported Media Type", "metrics are text/plain (Prometheus text format)");
    for (char c : body)
      if (c == '\n') ++lines;
  }
  std::string name = safe_name(rq.instance, 64) + "-" + safe_name(rq.batch, 20) + "-" +
                     std::to_string(realtime_ns() / 1'000'000) + "-" + std::to_string(++files_);
  std::string path = dir_ + (logs ? "/logs/" + name + ".ndjson" : "/metrics/" + name + ".prom");
  std::string error;
  if (!write_file(path, body, &error)) {
    log::error("cannot store an export batch", {{"error", error}});
    return answer(500, "Internal Server Error", "cannot store the batch");
  }
  log::info("stored an export batch", {{"kind", logs ? "logs" : "metrics"},
                                       {"instance", rq.instance},
                                       {"batch", rq.batch},
                                       {"lines", lines},
                                       {"bytes", body.size()},
                                       {"dropped-at-agent", rq.dropped},
                                       {"file", path}});
  return answer(200, "OK", "stored " + std::to_string(lines) + " lines");
}

}  // namespace kbgp::ingest
