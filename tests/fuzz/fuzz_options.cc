// libFuzzer target: any command line and environment is refused or accepted
// cleanly. Input: NUL-separated arguments; an argument starting with '$' is an
// environment assignment NAME=VALUE.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "supervisor/options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  // NAME=value assignments in input order; the last one of a name counts.
  // A vector, not a map: the harness's own tree code would add coverage
  // that rewards the fuzzer for nothing in the code under test.
  std::vector<std::pair<std::string, std::string>> env;
  std::string current;
  auto flush = [&] {
    if (!current.empty() && current[0] == '$') {
      auto eq = current.find('=');
      if (eq != std::string::npos) env.emplace_back(current.substr(1, eq - 1), current.substr(eq + 1));
    } else {
      args.push_back(current);
    }
    current.clear();
  };
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0)
      flush();
    else
      current.push_back(static_cast<char>(data[i]));
  }
  flush();
  auto outcome = kbgp::parse_options(args, [&](const std::string& k) -> std::optional<std::string> {
    for (auto it = env.rbegin(); it != env.rend(); ++it)
      if (it->first == k) return it->second;
    return std::nullopt;
  });
  if (outcome.kind == kbgp::ParseOutcome::Kind::Error && outcome.message.empty()) __builtin_trap();
  return 0;
}
