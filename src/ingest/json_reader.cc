#include "ingest/json_reader.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/fd.h"

#include <fcntl.h>

namespace kbgp::ingest {

JsonPtr json_parse_text(const std::string& text, std::string* error) {
  json_error_t err;
  JsonPtr root(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, &err));
  if (!root) {
    *error = "line " + std::to_string(err.line) + " column " + std::to_string(err.column) +
             ": " + err.text;
  }
  return root;
}

bool read_text_file(const std::string& path, std::string* out, std::string* error,
                    size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = "cannot read " + path + ": " + std::strerror(errno);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > max_bytes) {
      *error = path + " is larger than " + std::to_string(max_bytes) + " bytes";
      return false;
    }
  }
  return true;
}

const char* json_type_name(const json_t* value) {
  switch (json_typeof(value)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
  }
  return "an unknown value";
}

ObjectReader::ObjectReader(json_t* object, std::string where)
    : object_(object), where_(std::move(where)) {
  if (!json_is_object(object_)) {
    error_ = where_ + ": must be a JSON object, found " + json_type_name(object_);
    object_ = nullptr;
  }
}

bool ObjectReader::fail(const std::string& message) {
  if (error_.empty()) error_ = where_ + ": " + message;
  return false;
}

json_t* ObjectReader::get(const char* key, bool required, bool* missing) {
  *missing = false;
  if (!object_) return nullptr;
  json_t* value = json_object_get(object_, key);
  if (!value) {
    *missing = true;
    if (required) fail(std::string("missing field \"") + key + "\"");
  }
  return value;
}

bool ObjectReader::string(const char* key, std::string& out, bool required) {
  if (!error_.empty()) return false;
  bool missing = false;
  json_t* value = get(key, required, &missing);
  if (missing) return !required;
  if (!value) return false;
  if (!json_is_string(value)) {
    return fail(std::string("field \"") + key + "\" must be a string, found " +
                json_type_name(value));
  }
  out.assign(json_string_value(value), json_string_length(value));
  if (out.find('\0') != std::string::npos) {
    return fail(std::string("field \"") + key + "\" contains a NUL character");
  }
  return true;
}

bool ObjectReader::uint32(const char* key, uint32_t& out, bool required) {
  if (!error_.empty()) return false;
  bool missing = false;
  json_t* value = get(key, required, &missing);
  if (missing) return !required;
  if (!value) return false;
  if (!json_is_integer(value)) {
    return fail(std::string("field \"") + key + "\" must be an integer, found " +
                json_type_name(value));
  }
  json_int_t n = json_integer_value(value);
  if (n < 0 || n > static_cast<json_int_t>(UINT32_MAX)) {
    return fail(std::string("field \"") + key + "\" must be between 0 and 4294967295, found " +
                std::to_string(n));
  }
  out = static_cast<uint32_t>(n);
  return true;
}

json_t* ObjectReader::array(const char* key) {
  if (!error_.empty()) return nullptr;
  bool missing = false;
  json_t* value = get(key, true, &missing);
  if (!value) return nullptr;
  if (!json_is_array(value)) {
    fail(std::string("field \"") + key + "\" must be an array, found " + json_type_name(value));
    return nullptr;
  }
  return value;
}

bool ObjectReader::only_keys(std::initializer_list<const char*> keys) {
  if (!error_.empty() || !object_) return false;
  const char* key;
  json_t* value;
  json_object_foreach(object_, key, value) {
    bool known = false;
    for (const char* k : keys) known = known || std::strcmp(k, key) == 0;
    if (known) continue;
    std::string list;
    for (const char* k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
    return fail(std::string("unknown field \"") + key + "\" (known fields: " + list + ")");
  }
  return true;
}

}  // namespace kbgp::ingest
