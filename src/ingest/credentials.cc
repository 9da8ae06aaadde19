#include "ingest/credentials.h"

#include "ingest/json_reader.h"

namespace kbgp::ingest {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the longer length so a short guess costs as much as a long one;
  // `volatile` keeps the compiler from turning the loop into an early exit.
  size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::optional<Credentials> Credentials::parse(const std::string& text, std::string* error) {
  JsonPtr root = json_parse_text(text, error);
  if (!root) return std::nullopt;
  ObjectReader top(root.get(), "top level");
  json_t* list = top.only_keys({"credentials"}) ? top.array("credentials") : nullptr;
  if (!list) {
    *error = top.error();
    return std::nullopt;
  }
  Credentials creds;
  size_t index;
  json_t* item;
  json_array_foreach(list, index, item) {
    ObjectReader entry(item, "credentials[" + std::to_string(index) + "]");
    Entry e;
    if (!entry.only_keys({"email", "token"}) || !entry.string("email", e.email, true) ||
        !entry.string("token", e.token, true)) {
      *error = entry.error();
      return std::nullopt;
    }
    std::string where = "credentials[" + std::to_string(index) + "]: ";
    if (e.email.empty()) {
      *error = where + "field \"email\" must not be empty";
      return std::nullopt;
    }
    if (e.token.empty()) {
      *error = where + "field \"token\" must not be empty";
      return std::nullopt;
    }
    creds.entries_.push_back(std::move(e));
  }
  if (creds.entries_.empty()) {
    *error = "\"credentials\" is empty: no caller could ever authenticate";
    return std::nullopt;
  }
  return creds;
}

std::optional<Credentials> Credentials::load(const std::string& path, std::string* error) {
  std::string text;
  if (!read_text_file(path, &text, error)) return std::nullopt;
  auto creds = parse(text, error);
  if (!creds) *error = path + ": " + *error;
  return creds;
}

bool Credentials::check(std::string_view email, std::string_view token) const {
  if (email.empty() || token.empty()) return false;
  bool found = false;
  for (const auto& e : entries_) {
    // Both comparisons always run (no short-circuit), for every entry.
    bool email_ok = constant_time_equal(e.email, email);
    bool token_ok = constant_time_equal(e.token, token);
    found = found | (email_ok & token_ok);
  }
  return found;
}

}  // namespace kbgp::ingest
