#include "common/gzip.h"

#include <zlib.h>

#include <memory>

namespace kbgp {

std::string gzip_compress(std::string_view data, int level) {
  z_stream z{};
  // 15 + 16: gzip header and trailer; 8: default memory level.
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out;
  out.resize(deflateBound(&z, static_cast<uLong>(data.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : std::string();
}

std::optional<std::string> gzip_decompress(std::string_view data, size_t max_bytes,
                                           std::string* error) {
  z_stream z{};
  // 15 + 32: detect gzip or zlib headers.
  if (inflateInit2(&z, 15 + 32) != Z_OK) {
    *error = "zlib cannot start";
    return std::nullopt;
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[65536];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    int rc = inflate(&z, Z_NO_FLUSH);
    size_t produced = sizeof buf - z.avail_out;
    if (out.size() + produced > max_bytes) {
      *error = "decompressed body larger than " + std::to_string(max_bytes) + " bytes";
      return std::nullopt;
    }
    out.append(buf, produced);
    if (rc == Z_STREAM_END) {
      if (z.avail_in != 0) {
        *error = "bytes after the end of the gzip stream";
        return std::nullopt;
      }
      return out;
    }
    if (rc != Z_OK) {
      *error = std::string("corrupt gzip data") + (z.msg ? std::string(": ") + z.msg : "");
      return std::nullopt;
    }
    if (z.avail_in == 0 && produced == 0) {
      *error = "truncated gzip data";
      return std::nullopt;
    }
  }
}

}  // namespace kbgp
