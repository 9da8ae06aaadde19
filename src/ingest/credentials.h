// The credentials file: who may call the backend.
//   {"credentials": [{"email": "demo@example.com", "token": "s3cret"}]}
// Several entries may share an email (token rotation). Tokens are compared
// in constant time so response timing does not reveal how much of a guessed
// token was right.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbgp::ingest {

class Credentials {
 public:
  // Parses the file's text; on failure returns nullopt and sets `error`.
  static std::optional<Credentials> parse(const std::string& text, std::string* error);
  // Reads and parses a file; errors name the file.
  static std::optional<Credentials> load(const std::string& path, std::string* error);

  // True if (email, token) is one of the entries. Looks at every entry and
  // every byte whatever the outcome.
  bool check(std::string_view email, std::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string email;
    std::string token;
  };
  std::vector<Entry> entries_;
};

// Equality whose running time depends only on the lengths of a and b.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace kbgp::ingest
