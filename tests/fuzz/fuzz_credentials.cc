// libFuzzer target: kbgp-ingest's credentials file (ingest/credentials.h).
// Refused with a message or accepted; an accepted file lets in exactly
// the (email, token) pairs it lists, compared in constant time.
//
// Input: the file's text; after a NUL byte, an "email\ntoken" guess.
#include <jansson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_input.h"
#include "ingest/credentials.h"

using namespace kbgp;
using namespace kbgp::ingest;

namespace {

// The pairs the file lists, read independently with jansson.
std::vector<std::pair<std::string, std::string>> listed(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  json_t* root = json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, nullptr);
  json_t* array = root ? json_object_get(root, "credentials") : nullptr;
  size_t i;
  json_t* entry;
  json_array_foreach(array, i, entry) {
    json_t* email = json_object_get(entry, "email");
    json_t* token = json_object_get(entry, "token");
    if (json_is_string(email) && json_is_string(token))
      out.emplace_back(std::string(json_string_value(email), json_string_length(email)),
                       std::string(json_string_value(token), json_string_length(token)));
  }
  json_decref(root);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string text(input.substr(0, nul));
  std::string_view guess = nul == std::string_view::npos ? "" : input.substr(nul + 1);
  std::string_view guess_email = guess.substr(0, guess.find('\n'));
  std::string_view guess_token =
      guess.find('\n') == std::string_view::npos ? "" : guess.substr(guess.find('\n') + 1);

  FUZZ_CHECK(constant_time_equal(guess_email, guess_token) == (guess_email == guess_token));

  std::string error;
  auto creds = Credentials::parse(text, &error);
  if (!creds) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  auto pairs = listed(text);
  FUZZ_CHECK(creds->size() == pairs.size() && !pairs.empty());
  bool expected = false;
  for (const auto& [email, token] : pairs) {
    FUZZ_CHECK(!email.empty() && !token.empty());
    FUZZ_CHECK(creds->check(email, token));
    expected |= email == guess_email && token == guess_token;
  }
  FUZZ_CHECK(creds->check(guess_email, guess_token) == expected);
  FUZZ_CHECK(!creds->check("", ""));
  return 0;
}
