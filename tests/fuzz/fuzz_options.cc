// libFuzzer target: any command line and environment is refused or accepted
// cleanly. Input: NUL-separated arguments; an argument starting with '$' is an
// environment assignment NAME=VALUE.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "supervisor/options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string current;
  auto flush = [&] {
    if (!current.empty() && current[0] == '$') {
      auto eq = current.find('=');
      if (eq != std::string::npos) env[current.substr(1, eq - 1)] = current.substr(eq + 1);
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
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  if (outcome.kind == kbgp::ParseOutcome::Kind::Error && outcome.message.empty()) __builtin_trap();
  return 0;
}
