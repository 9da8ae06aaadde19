// What kbgp-ingest does with a log or metrics export from an agent
// (docs/export.md): check the caller, decompress with a bound, validate, and
// store the batch as one file under --export-dir:
//   <dir>/logs/<instance>-<batch>-<unix ms>.ndjson
//   <dir>/metrics/<instance>-<batch>-<unix ms>.prom
// written to a temporary name first and renamed, so a reader never sees half
// a file. The HTTP side is export_server.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ingest/credentials.h"

namespace kbgp::ingest {

constexpr size_t kMaxExportBody = 8 * 1024 * 1024;          // compressed, as received
constexpr size_t kMaxExportDecompressed = 64 * 1024 * 1024;  // after gzip

struct ExportRequest {
  std::string method;
  std::string path;  // without the query
  // Header values (empty when absent).
  std::string content_type;
  std::string content_encoding;
  std::string email;
  std::string token;
  std::string instance;
  std::string batch;
  std::string dropped;
  std::string body;
};

struct ExportAnswer {
  int status = 500;
  std::string reason;
  std::string json;  // response body
};

class ExportStore {
 public:
  // `dir` must exist (or be creatable); the logs/ and metrics/ subdirectories
  // are created. `credentials` returns the credentials in force now.
  static std::unique_ptr<ExportStore> open(const std::string& dir,
                                           std::function<std::shared_ptr<const Credentials>()> credentials,
                                           std::string* error);

  ExportAnswer handle(const ExportRequest& request);

 private:
  ExportStore() = default;
  std::string dir_;
  std::function<std::shared_ptr<const Credentials>()> credentials_;
  uint64_t files_ = 0;
};

}  // namespace kbgp::ingest
