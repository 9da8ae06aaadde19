// Small helpers to read the backend's JSON configuration files (credentials,
// device registry) with precise error messages: which file, line, entry and
// field was wrong. Backed by jansson; no gRPC here, so unit tests link it
// cheaply.
#pragma once

#include <jansson.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

namespace kbgp::ingest {

struct JsonDeleter {
  void operator()(json_t* j) const { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

// Parses `text`; on failure returns null and sets `error` to
// "line L column C: reason".
JsonPtr json_parse_text(const std::string& text, std::string* error);
// Reads a whole file (size-capped) into `out`; sets `error` with errno text.
bool read_text_file(const std::string& path, std::string* out, std::string* error,
                    size_t max_bytes = 16u << 20);

// Reads the fields of one JSON object. Every getter returns false and sets
// error() on the first problem; `where` prefixes every message (e.g.
// "devices[2]").
class ObjectReader {
 public:
  ObjectReader(json_t* object, std::string where);

  bool string(const char* key, std::string& out, bool required);
  bool uint32(const char* key, uint32_t& out, bool required);
  // Returns the array under `key` (required), or null with error() set.
  json_t* array(const char* key);
  // False (error set) if the object holds a key not in `keys`; call it
  // first, so a misspelt key is reported rather than the missing one.
  bool only_keys(std::initializer_list<const char*> keys);

  const std::string& error() const { return error_; }

 private:
  json_t* get(const char* key, bool required, bool* missing);
  bool fail(const std::string& message);

  json_t* object_;
  std::string where_;
  std::string error_;
};

// "a string", "an integer", ... for error messages.
const char* json_type_name(const json_t* value);

}  // namespace kbgp::ingest
