// Random (version 4) UUIDs, from getrandom(2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kbgp {

void uuid_v4(uint8_t out[16]);
std::string uuid_to_string(const uint8_t id[16]);
// Parses the canonical 36-character form; nullopt on any deviation.
std::optional<std::string> uuid_parse(const std::string& text, uint8_t out[16]);

}  // namespace kbgp
