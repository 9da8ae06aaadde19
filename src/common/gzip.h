// gzip (RFC 1952) with zlib, for log and metrics export: the uplink
// compresses batches, kbgp-ingest decompresses them with a bound on the
// output (a small body must not inflate into gigabytes).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kbgp {

std::string gzip_compress(std::string_view data, int level = 6);

// Decompresses one gzip member (a zlib stream is accepted too). nullopt and
// `error` for corrupt input or when the output would exceed `max_bytes`.
std::optional<std::string> gzip_decompress(std::string_view data, size_t max_bytes,
                                           std::string* error);

}  // namespace kbgp
